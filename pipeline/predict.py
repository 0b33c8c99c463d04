"""`segpipe predict`: masks for image files from a pushed model folder, a SavedModel folder or a `.tflite`
file, as PNGs `segpipe score` reads, and optionally colour overlays.

- A pushed folder (`serving_model/<version>`, see `components.pusher.push`) is checked against its manifest
  first, then served as the SavedModel at its root. A SavedModel's image-bytes signature (`serving_default`)
  runs the transform graph it was trained with and returns class ids at each image's own size; images go
  to it in batches (`BATCH_SIZE`), and a batch holding an unreadable image is retried one image at a time.
- A `.tflite` model takes the preprocessed tensor at the training size: the image is decoded, resized and
  normalised here by the rules of its side JSON (`tflite_models.json` beside it: resize mode, normalisation,
  padding pixel), with the transform's own ops (`components.core.preprocessing`), one image per invocation
  (XNNPACK needs the static batch of 1), and the prediction is mapped back to the image's size as the
  Evaluator maps it (`prediction_at_image_size`).

Each mask is a palette PNG whose pixel values are the class ids (255 = ignore) and whose palette is the
label map's colours. An image above the pixel limit (decompression bombs: the model's
`export.max_image_pixels`, read from the header before decoding), a corrupt or unreadable file is listed
with its reason and the others go through; none is skipped silently.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from components import artifacts
from components.core import features, push_manifest
from components.core.config import ExportConfig
from components.core.label_maps import LabelMap, load_label_map

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
BATCH_SIZE = 8
OVERLAY_OPACITY = 0.5


class ImageError(Exception):
    """An image that cannot be predicted (unreadable, corrupt, above the pixel limit); the message says why."""


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


def read_image_bytes(path: Path, max_pixels: int) -> bytes:
    """The file's bytes, after its header says it is an image of at most `max_pixels` pixels.

    Raises:
        ImageError: unreadable, not an image, or too large.
    """
    try:
        content = path.read_bytes()
        with Image.open(io.BytesIO(content)) as image:  # the header only; the file is read once
            width, height = image.size
    except OSError as error:  # PIL's UnidentifiedImageError and DecompressionBombError are OSErrors too
        raise ImageError(str(error).split("\n")[0]) from None
    except Image.DecompressionBombError as error:
        raise ImageError(str(error)) from None
    if width * height > max_pixels:
        raise ImageError(f"{width}x{height} = {width * height} pixels, more than the model's limit of {max_pixels}")
    return content


class SavedModelPredictor:
    """Class ids from a segpipe serving SavedModel's image-bytes signature, in batches."""

    kind = "saved_model"

    def __init__(self, model_dir: Path):
        import tensorflow as tf

        if not (model_dir / "saved_model.pb").is_file():
            raise FileNotFoundError(f"{model_dir}: no saved_model.pb (pass a pushed serving_model/<version> folder, "
                                    "an exported SavedModel folder or a .tflite file)")
        info_path = model_dir / artifacts.MODEL_INFO_FILE
        if not info_path.is_file():
            raise ValueError(f"{model_dir}: no {artifacts.MODEL_INFO_FILE}; not a model exported by this segpipe version")
        self.info = json.loads(info_path.read_text(encoding="utf-8"))
        # Keep the loaded object referenced while its signature runs: a signature needs its SavedModel alive.
        self._model = tf.saved_model.load(str(model_dir))
        self._signature = self._model.signatures.get(artifacts.SERVE_IMAGES)
        if self._signature is None or "images" not in self._signature.structured_input_signature[1]:
            raise ValueError(f"{model_dir}: its '{artifacts.SERVE_IMAGES}' signature does not take images")
        self.label_map = load_label_map(self.info["label_map"])
        self.max_pixels = int(self.info.get("max_image_pixels", ExportConfig().max_image_pixels))
        self.batch_size = BATCH_SIZE

    def predict(self, contents: list[bytes]) -> list[np.ndarray]:
        """Class ids (uint8, at each image's size) of a batch of encoded images.

        Raises:
            ImageError: the model could not decode one of them.
        """
        import tensorflow as tf

        try:
            served = self._signature(images=tf.constant(contents))
        except tf.errors.InvalidArgumentError as error:
            raise ImageError(error.message.strip().splitlines()[0]) from None
        class_ids, sizes = served[features.CLASS_IDS].numpy(), served["image_size"].numpy()
        return [ids[:rows, :cols].astype(np.uint8) for ids, (rows, cols) in zip(class_ids, sizes)]


class TFLitePredictor:
    """Class ids from a segpipe TFLite model, preprocessing by its side JSON, one image per invocation."""

    kind = "tflite"

    def __init__(self, model_path: Path, num_threads: int | None = None):
        from components.core.tflite import TFLiteSegmenter

        side_json = model_path.parent / artifacts.TFLITE_METADATA_FILE
        if not side_json.is_file():
            raise FileNotFoundError(f"{model_path}: no {artifacts.TFLITE_METADATA_FILE} beside it (it says how to "
                                    "preprocess the input; pass a .tflite file from a push or a TFLiteExport output)")
        self.info = json.loads(side_json.read_text(encoding="utf-8"))
        try:
            self._segmenter = TFLiteSegmenter(model_path.read_bytes(), num_threads=num_threads or os.cpu_count())
        except ValueError as error:
            raise ValueError(f"{model_path}: not a TFLite model ({str(error).splitlines()[0]})") from None
        self.label_map = load_label_map(self.info["label_map"])
        self.max_pixels = int(self.info.get("max_image_pixels", ExportConfig().max_image_pixels))
        self.batch_size = 1
        spec = self.info["input"]
        self._size = tuple(self.info["image_size"])
        self._resize = spec["resize"]
        self._normalization = (np.asarray(spec["normalization_mean"], np.float32),
                               np.asarray(spec["normalization_std"], np.float32),
                               np.asarray(spec["padding_pixel"], np.float32))

    def predict(self, contents: list[bytes]) -> list[np.ndarray]:
        """Class ids (uint8, at each image's size) of encoded images, one invocation each.

        Raises:
            ImageError: an image that cannot be decoded.
        """
        import tensorflow as tf

        from components.core import preprocessing
        from components.core.metrics import prediction_at_image_size
        from components.trainer.export import encoded_image_size

        mean, std, padding = self._normalization
        masks = []
        for content in contents:
            try:
                image_size = encoded_image_size(tf.constant(content))  # from the header, as the SavedModel reads it
                image, scaled = preprocessing.decode_and_resize_image(tf.constant(content), self._size, self._resize)
            except tf.errors.InvalidArgumentError as error:
                raise ImageError(error.message.strip().splitlines()[0]) from None
            inputs = preprocessing.model_input(image[None], scaled[None], self._size, padding, mean, std)
            class_ids = self._segmenter.predict_class_ids(inputs.numpy())[0]
            masks.append(prediction_at_image_size(class_ids, scaled.numpy(), tuple(image_size.numpy()))
                         .astype(np.uint8))
        return masks


def load_predictor(model: Path):
    """The predictor of a pushed folder (checked against its manifest), a SavedModel folder or a `.tflite` file.

    Raises:
        FileNotFoundError, ValueError: the path is none of those, or a pushed folder differs from its manifest.
    """
    if model.is_file():
        if model.suffix != ".tflite":
            raise ValueError(f"{model}: not a model (pass a pushed folder, a SavedModel folder or a .tflite file)")
        return TFLitePredictor(model)
    if not model.is_dir():
        raise FileNotFoundError(f"{model}: no such model file or folder")
    if (model / push_manifest.MANIFEST_FILE).is_file():
        problems = push_manifest.verify_folder(model)
        if problems:
            raise ValueError(f"{model}: differs from its {push_manifest.MANIFEST_FILE}: {'; '.join(problems[:3])}"
                             + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""))
    return SavedModelPredictor(model)


def overlay_image(content: bytes, class_ids: np.ndarray, label_map: LabelMap) -> np.ndarray:
    """The image with each predicted class blended in its colour (`OVERLAY_OPACITY`); ignore-label pixels
    show the image alone."""
    image = np.asarray(Image.open(io.BytesIO(content)).convert("RGB"), np.float32)
    colours = label_map.colorize(class_ids).astype(np.float32)
    blended = np.where((class_ids != label_map.ignore_label)[..., None],
                       (1 - OVERLAY_OPACITY) * image + OVERLAY_OPACITY * colours, image)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def predict_files(model: Path, inputs: list[Path], out_dir: Path, overlay_dir: Path | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """Writes `<out_dir>/<relative path>.png` (and `<overlay_dir>/<relative path>.png` when given) for every
    image of `inputs`; returns counts and failures."""
    files = image_files(inputs)
    predictor = load_predictor(model)
    palette = predictor.label_map.palette()
    written, failed = [], []

    def fail(path: Path, reason: str) -> None:
        failed.append({"file": str(path), "reason": reason})
        logger.warning("%s: %s", path, reason)

    def write(path: Path, relative: Path, content: bytes, class_ids: np.ndarray) -> None:
        target = out_dir / relative.with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        mask = Image.fromarray(class_ids, mode="P")
        mask.putpalette(palette)
        mask.save(target)
        if overlay_dir is not None:
            overlay_path = overlay_dir / relative.with_suffix(".png")
            overlay_path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(overlay_image(content, class_ids, predictor.label_map)).save(overlay_path)
        written.append(str(target))

    done = 0
    for batch in _batches(files, predictor.batch_size):
        readable = []
        for path, relative in batch:
            try:
                readable.append((path, relative, read_image_bytes(path, predictor.max_pixels)))
            except ImageError as error:
                fail(path, str(error))
        try:
            masks = predictor.predict([content for _, _, content in readable]) if readable else []
            for (path, relative, content), class_ids in zip(readable, masks):
                write(path, relative, content, class_ids)
        except ImageError:  # one image of the batch: find it by predicting them one by one
            for path, relative, content in readable:
                try:
                    write(path, relative, content, predictor.predict([content])[0])
                except ImageError as error:
                    fail(path, str(error))
        done += len(batch)
        if progress is not None:
            progress(done, len(files))
        elif done % 50 < len(batch) or done == len(files):
            logger.info("Predicted %d/%d images", done, len(files))
    return {"model": str(model), "format": predictor.kind, "label_map": predictor.label_map.name,
            "images": len(files), "written": len(written), "failed": failed, "out_dir": os.fspath(out_dir),
            **({"overlay_dir": os.fspath(overlay_dir)} if overlay_dir is not None else {})}
