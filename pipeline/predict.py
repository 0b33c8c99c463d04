"""`segpipe predict`: masks for image files from an exported segpipe model, as PNGs `segpipe score` reads.

Each image's encoded bytes go to the model's image-bytes signature (`serving_default`), which runs the
transform graph it was trained with and returns the class ids at the image's own size. Each mask is
written as a palette PNG whose pixel values are the class ids (255 = ignore) and whose palette is the
label map's colours, so that it is both a class-index mask for `segpipe score` and a picture. Files that
cannot be read as images are listed with the reason; none is skipped silently.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from components import artifacts
from components.core.label_maps import load_label_map

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def image_files(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """(file, path relative to its input) for every JPEG/PNG among `inputs` (files or folders, searched deeply).

    Raises:
        FileNotFoundError: an input that does not exist.
    """
    found = []
    for item in inputs:
        if item.is_dir():
            found += [(path, path.relative_to(item)) for path in sorted(item.rglob("*"))
                      if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()]
        elif item.is_file():
            found.append((item, Path(item.name)))
        else:
            raise FileNotFoundError(f"{item}: no such image file or folder")
    return found


def load_served_model(model_dir: Path):
    """The exported model's image signature and its model info.

    Raises:
        FileNotFoundError: no SavedModel in `model_dir`.
        ValueError: a SavedModel that is not a segpipe model (no image signature or model info).
    """
    import tensorflow as tf

    if not (model_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{model_dir}: no saved_model.pb (pass the exported model folder, e.g. the "
                                "pushed serving_model/<version> folder)")
    info_path = model_dir / artifacts.MODEL_INFO_FILE
    if not info_path.is_file():
        raise ValueError(f"{model_dir}: no {artifacts.MODEL_INFO_FILE}; not a model exported by this segpipe version")
    model = tf.saved_model.load(str(model_dir))
    signature = model.signatures.get(artifacts.SERVE_IMAGES)
    if signature is None or "images" not in signature.structured_input_signature[1]:
        raise ValueError(f"{model_dir}: its '{artifacts.SERVE_IMAGES}' signature does not take images")
    return model, signature, json.loads(info_path.read_text(encoding="utf-8"))


def predict_files(model_dir: Path, inputs: list[Path], out_dir: Path) -> dict:
    """Writes `<out_dir>/<relative path>.png` for every image of `inputs`; returns counts and failures."""
    import tensorflow as tf

    files = image_files(inputs)
    # Keep `model` referenced while `signature` runs: a loaded signature needs its SavedModel object alive.
    model, signature, info = load_served_model(model_dir)  # noqa: F841
    palette = load_label_map(info["label_map"]).palette()
    written, failed = [], []
    for index, (path, relative) in enumerate(files, start=1):
        try:
            served = signature(images=tf.constant([path.read_bytes()]))
        except tf.errors.InvalidArgumentError as error:
            reason = error.message.strip().splitlines()[0]
            failed.append({"file": str(path), "reason": reason})
            logger.warning("%s: %s", path, reason)
            continue
        class_ids = served["class_ids"].numpy()[0].astype(np.uint8)
        target = out_dir / relative.with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        mask = Image.fromarray(class_ids, mode="P")
        mask.putpalette(palette)
        mask.save(target)
        written.append(str(target))
        if index % 50 == 0 or index == len(files):
            logger.info("Predicted %d/%d images", index, len(files))
    return {"model": str(model_dir), "label_map": info["label_map"], "images": len(files),
            "written": len(written), "failed": failed, "out_dir": os.fspath(out_dir)}
