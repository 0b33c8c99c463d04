"""The manifest of a pushed model folder: what every file is (size, sha256), how each format scored, and
where it came from; and the check that a folder still matches its manifest.

A pushed folder (written by `components.pusher`) holds the serving SavedModel at its root (so the folder
itself loads with `tf.saved_model.load`), the accepted TFLite models and their side JSON under `tflite/`,
and `manifest.json`. The manifest lists every other file of the folder; `verify_folder` recomputes them.
Plain Python: no TensorFlow, no TFX.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

MANIFEST_FILE = "manifest.json"
TFLITE_DIR = "tflite"
MANIFEST_VERSION = 1


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(folder: Path) -> list[dict[str, Any]]:
    """`{"path", "bytes", "sha256"}` of every file under `folder` but the manifest, sorted by path
    (paths relative to `folder`, with forward slashes)."""
    entries = []
    for path in sorted(item for item in folder.rglob("*") if item.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative != MANIFEST_FILE:
            entries.append({"path": relative, "bytes": path.stat().st_size, "sha256": sha256_of(path)})
    return entries


def build_manifest(folder: Path, *, version: str, label_map: Mapping[str, Any], input_spec: Mapping[str, Any],
                   formats: Mapping[str, Mapping[str, Any]], refused: Mapping[str, Mapping[str, Any]],
                   source: Mapping[str, Any], pushed_at: str) -> dict[str, Any]:
    """The manifest of `folder` (its files as they are now).

    Args:
        folder: the staged push folder, complete but for the manifest.
        version: the push's version (the folder's name at the destination).
        label_map: name, classes (id, name, colour) and ignore label.
        input_spec: what a client must feed the TFLite models (size, resize, normalisation, padding pixel).
        formats: per format ("saved_model", "tflite_float32", ...): its path in the folder and its figures
            (metrics, size, latency, tensors and quantization parameters).
        refused: formats left out of the push, with the reason and figures.
        source: the TFX and MLflow runs the model came from.
        pushed_at: ISO-8601 time of the push.
    """
    return {"manifest_version": MANIFEST_VERSION, "version": version, "pushed_at": pushed_at,
            "label_map": dict(label_map), "input": dict(input_spec), "formats": {k: dict(v) for k, v in formats.items()},
            "refused": {k: dict(v) for k, v in refused.items()}, "source": dict(source),
            "files": file_entries(folder)}


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> Path:
    """Writes `manifest` as `folder/manifest.json` and returns its path."""
    path = folder / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a pushed folder.

    Raises:
        FileNotFoundError: the folder has no manifest.
        ValueError: the manifest is not JSON or not a segpipe manifest.
    """
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no push manifest")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        raise ValueError(f"{path}: not a segpipe push manifest of version {MANIFEST_VERSION}")
    return manifest


def verify_folder(folder: Path) -> list[str]:
    """What differs between a pushed folder and its manifest: one line per missing, changed or unlisted
    file (empty when the folder is intact)."""
    manifest = read_manifest(folder)
    listed = {entry["path"]: entry for entry in manifest["files"]}
    present = {entry["path"]: entry for entry in file_entries(folder)}
    problems = [f"{path}: listed in the manifest but missing" for path in sorted(set(listed) - set(present))]
    problems += [f"{path}: not listed in the manifest" for path in sorted(set(present) - set(listed))]
    for path in sorted(set(listed) & set(present)):
        if listed[path]["sha256"] != present[path]["sha256"] or listed[path]["bytes"] != present[path]["bytes"]:
            problems.append(f"{path}: sha256 or size differs from the manifest")
    return problems
