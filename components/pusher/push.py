"""Pushing a blessed model: stage the SavedModel, the accepted TFLite models and the manifest in a local
folder, then copy it to `<base_directory>/<version>` under a temporary name and rename it, so that a reader
never sees half a push and no push ever overwrites another (the version is the push time in seconds, moved
on by one while a folder of that name exists).

The pushed folder:
    <version>/saved_model.pb, variables/, assets/, segpipe_model.json   the serving SavedModel (the folder loads
                                                                         as one: `tf.saved_model.load`)
    <version>/tflite/model_<variant>.tflite, tflite_models.json          the accepted TFLite models, side JSON
    <version>/manifest.json                                              `components.core.push_manifest`
Refused TFLite models (beyond `export.max_miou_drop`) are not pushed; the manifest says why.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import tensorflow as tf

from components import artifacts
from components.core import push_manifest

logger = logging.getLogger(__name__)


def copy_tree(source: str, destination: str) -> None:
    """Copies a folder with `tf.io.gfile` (local paths or any filesystem TensorFlow reads, e.g. gs://, s3://)."""
    for directory, _, files in tf.io.gfile.walk(source):
        target_dir = os.path.join(destination, os.path.relpath(directory, source))
        tf.io.gfile.makedirs(target_dir)
        for name in files:
            tf.io.gfile.copy(os.path.join(directory, name), os.path.join(target_dir, name), overwrite=True)


def next_version(base_directory: str, now: float | None = None) -> str:
    """The push time in whole seconds, moved on by one while `base_directory` already has that folder."""
    version = int(time.time() if now is None else now)
    while tf.io.gfile.exists(os.path.join(base_directory, str(version))):
        version += 1
    return str(version)


def format_figures(tflite_document: Mapping[str, Any], evaluator_metrics: Mapping[str, float]) -> tuple[dict, dict]:
    """The manifest's `formats` and `refused` from the TFLite side JSON and the Evaluator's overall metrics."""
    reference = tflite_document["reference"]
    formats = {"saved_model": {
        "path": ".", "signatures": [artifacts.SERVE_IMAGES, artifacts.SERVE_EXAMPLES],
        "metrics": dict(sorted(evaluator_metrics.items())),
        "miou": reference.get("miou"), "mean_dice": reference.get("mean_dice"), "hd95": reference.get("hd95"),
        "latency_ms": reference.get("latency_ms")}}
    refused = {}
    for variant, figures in tflite_document["variants"].items():
        entry = {key: value for key, value in figures.items() if key not in ("status", "file")}
        if figures["status"] == "accepted":
            formats[f"tflite_{variant}"] = {"path": f"{push_manifest.TFLITE_DIR}/{artifacts.TFLITE_FILES[variant]}",
                                            **entry}
        else:
            refused[f"tflite_{variant}"] = {
                "reason": f"mIoU {figures.get('miou')} is {figures.get('miou_drop')} below the SavedModel's "
                          f"{reference.get('miou')}, more than export.max_miou_drop {tflite_document['max_miou_drop']}",
                **entry}
    return formats, refused


def stage(serving_model_dir: str, tflite_dir: str, staging: Path, *, version: str,
          evaluator_metrics: Mapping[str, float], source: Mapping[str, Any]) -> dict:
    """Fills `staging` with the push folder's content and manifest; returns the manifest."""
    copy_tree(serving_model_dir, str(staging))
    with tf.io.gfile.GFile(os.path.join(tflite_dir, artifacts.TFLITE_METADATA_FILE)) as stream:
        document = json.load(stream)
    tflite_out = staging / push_manifest.TFLITE_DIR
    tflite_out.mkdir()
    tf.io.gfile.copy(os.path.join(tflite_dir, artifacts.TFLITE_METADATA_FILE),
                     str(tflite_out / artifacts.TFLITE_METADATA_FILE))
    for variant, figures in document["variants"].items():
        if figures["status"] == "accepted":
            tf.io.gfile.copy(os.path.join(tflite_dir, figures["file"]), str(tflite_out / artifacts.TFLITE_FILES[variant]))
    formats, refused = format_figures(document, evaluator_metrics)
    label_map = {"name": document["label_map"], "ignore_label": document["ignore_label"], "classes": document["classes"]}
    input_spec = {"image_size": document["image_size"], **document["input"]}
    manifest = push_manifest.build_manifest(
        staging, version=version, label_map=label_map, input_spec=input_spec, formats=formats, refused=refused,
        source=source, pushed_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    push_manifest.write_manifest(staging, manifest)
    return manifest


def push(serving_model_dir: str, tflite_dir: str, base_directory: str, *, evaluator_metrics: Mapping[str, float],
         source: Mapping[str, Any]) -> tuple[str, dict]:
    """Pushes one model to a new `<base_directory>/<version>` folder; returns its path and manifest."""
    tf.io.gfile.makedirs(base_directory)
    with tempfile.TemporaryDirectory(prefix="segpipe-push-") as temporary:
        staging = Path(temporary) / "push"
        version = next_version(base_directory)
        manifest = stage(serving_model_dir, tflite_dir, staging, version=version,
                         evaluator_metrics=evaluator_metrics, source=source)
        partial = os.path.join(base_directory, f".{version}.partial")
        if tf.io.gfile.exists(partial):
            tf.io.gfile.rmtree(partial)
        copy_tree(str(staging), partial)
        destination = os.path.join(base_directory, version)
        tf.io.gfile.rename(partial, destination)
    logger.info("Pushed %s (%d files; %s)", destination, len(manifest["files"]),
                ", ".join(manifest["formats"]) + (f"; not pushed: {', '.join(manifest['refused'])}"
                                                 if manifest["refused"] else ""))
    return destination, manifest
