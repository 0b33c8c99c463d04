"""The `TFLiteExport` TFX component: float32, dynamic-range and int8 TFLite models of the trained model,
each scored on the evaluation split with the Evaluator's metric code.

It reads the Trainer's serving SavedModel (`Format-Serving`) and the examples:
- the network (the SavedModel's Keras `__call__`, without the transform graph) is converted to the three
  variants of `components.core.tflite`; the int8 one is calibrated on `export.calibration_examples`
  transformed training examples chosen from their `classes_present` so that every class is covered;
- each evaluation example goes through the SavedModel's `transform_features` signature (`image`,
  `content_size`) and every model (the SavedModel's network as the reference, each TFLite model); the
  predictions are scored against the raw mask PNG at its own resolution, exactly as the Evaluator scores
  (`evaluate_predictors`: `prediction_at_image_size`, `SegmentationEvaluator`).

A TFLite model that loses more than `export.max_miou_drop` mIoU against the reference is refused: the
run log warns, the side JSON records it with its scores, and its file goes to `refused/` instead of the
artifact's top level, where only accepted (pushable) models are. The side JSON
(`artifacts.TFLITE_METADATA_FILE`) holds what a mobile application needs: input size and normalisation
(`normalization_mean` / `normalization_std` of the transform, the padding pixel), each file's tensor types
and quantization parameters, class names and colours; and per variant its mIoU, per-class IoU, Dice,
HD95, size and single-image latency, beside the SavedModel's.
"""

import dataclasses
import json
import logging
import os
from typing import Iterator

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import standard_artifacts

from components import artifacts
from components.log_setup import native_stderr_hidden
from components.core import features, tflite
from components.core.config import ExportConfig
from components.core.evaluation_result import EvaluationResult
from components.core.examples import decode_mask_png, parsing_feature_spec
from components.core.label_maps import LabelMap, load_label_map

logger = logging.getLogger(__name__)

REFERENCE = "saved_model"
"""The side JSON's name of the trained model itself (the SavedModel's network), the reference of every variant."""
TRANSFORM_BATCH = 8


def split_records(examples_uri: str, split: str) -> tf.data.Dataset:
    """The serialized examples of one split of an Examples artifact (gzip TFRecords, in file order)."""
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        raise ValueError(f"no examples in split {split!r} of {examples_uri}")
    return tf.data.TFRecordDataset(files, compression_type="GZIP")


def calibration_images(transform, records: tf.data.Dataset, count: int) -> tuple[np.ndarray, dict]:
    """The representative images (transformed) and what the selection covered.

    Two passes over the training split: the first reads each example's `classes_present` (cheap, no
    decoding), `select_calibration_examples` picks the indices, the second transforms those examples.

    Returns:
        float32 [N, H, W, 3] and `{"examples": N, "classes_covered": [...], "classes_in_split": [...]}`.
    """
    spec = {features.CLASSES_PRESENT: tf.io.VarLenFeature(tf.int64)}
    class_sets = [tf.io.parse_single_example(record, spec)[features.CLASSES_PRESENT].values.numpy().tolist()
                  for record in records]
    chosen = tflite.select_calibration_examples(class_sets, count)
    wanted = set(chosen)
    selected = [record for index, record in enumerate(records) if index in wanted]
    images = [transform(examples=tf.stack(selected[start:start + TRANSFORM_BATCH]))[features.IMAGE].numpy()
              for start in range(0, len(selected), TRANSFORM_BATCH)]
    covered = sorted(set().union(*(class_sets[index] for index in chosen))) if chosen else []
    return np.concatenate(images), {"examples": len(chosen), "classes_covered": covered,
                                    "classes_in_split": sorted(set().union(*class_sets)) if class_sets else []}


def evaluation_batches(transform, records: tf.data.Dataset) -> Iterator[tflite.EvaluationBatch]:
    """The evaluation examples, transformed as the served model transforms them, with their raw masks decoded
    at their own resolution (as the Evaluator's metric decodes them)."""
    raw_spec = parsing_feature_spec()
    for serialized in records.batch(TRANSFORM_BATCH):
        transformed = transform(examples=serialized)
        masks = tf.io.parse_example(serialized, {features.MASK_ENCODED: raw_spec[features.MASK_ENCODED]})
        yield tflite.EvaluationBatch(
            images=transformed[features.IMAGE].numpy(),
            content_sizes=transformed[features.CONTENT_SIZE].numpy(),
            ground_truths=[decode_mask_png(encoded) for encoded in masks[features.MASK_ENCODED].numpy()])


def transform_constants(transform, records: tf.data.Dataset) -> dict:
    """The input normalisation the transform applies (the same for every example): mean, std, padding pixel."""
    transformed = transform(examples=tf.stack(list(records.take(1))))
    return {name: [float(value) for value in transformed[name].numpy()[0]]
            for name in (features.NORMALIZATION_MEAN, features.NORMALIZATION_STD, features.PIXEL_MEAN)}


def _scores(result) -> dict:
    return {"miou": result.miou, "per_class_iou": result.per_class_iou, "mean_dice": result.mean_dice,
            "per_class_dice": result.per_class_dice, "pixel_accuracy": result.pixel_accuracy,
            "hd95": result.hausdorff.hd95 if result.hausdorff else None,
            "per_class_hd95": result.hausdorff.per_class_hd95 if result.hausdorff else None}


@dataclasses.dataclass(frozen=True)
class Measurements:
    """What `measure` found: the TFLite files and, for them and the SavedModel (`REFERENCE`), the scores and
    single-image latencies; the tensor descriptions of each file, the calibration and the input normalisation."""

    image_size: tuple[int, int]
    contents: dict[str, bytes]
    results: dict[str, EvaluationResult]
    latencies_ms: dict[str, float]
    tensors: dict[str, dict]
    calibration: dict
    normalization: dict[str, list[float]]


def measure(model_dir: str, examples_uri: str, label_map: LabelMap, train_split: str, eval_split: str,
            config: ExportConfig) -> Measurements:
    """Converts the SavedModel's network to every TFLite variant and scores each, and the SavedModel itself,
    on the evaluation split with the Evaluator's code (one pass over the split).

    Args:
        model_dir: the Trainer's serving SavedModel.
        examples_uri: the Examples artifact (`Split-<name>` folders).
        label_map: the dataset's classes.
        train_split, eval_split: the splits to calibrate on and to evaluate on.
        config: the `export` section.
    """
    serving = tf.saved_model.load(model_dir)
    transform = serving.signatures[artifacts.TRANSFORM_FEATURES]
    train_records, eval_records = split_records(examples_uri, train_split), split_records(examples_uri, eval_split)
    representative, calibration = calibration_images(transform, train_records, config.calibration_examples)
    image_size = tuple(int(side) for side in representative.shape[1:3])
    logger.info("Converting to TFLite at %dx%d; int8 calibrated on %d training examples covering classes %s",
                image_size[1], image_size[0], calibration["examples"], calibration["classes_covered"])
    # The converter's C++ warnings and the interpreter's XNNPACK notice ignore TF_CPP_MIN_LOG_LEVEL.
    with native_stderr_hidden():
        contents = {variant: tflite.convert(serving, image_size, variant, representative)
                    for variant in tflite.VARIANTS}
        segmenters = {variant: tflite.TFLiteSegmenter(content, config.num_threads)
                      for variant, content in contents.items()}

    predictors = {REFERENCE: tflite.keras_class_id_predictor(serving)}
    predictors.update({variant: segmenter.predict_class_ids for variant, segmenter in segmenters.items()})
    results = tflite.evaluate_predictors(predictors, evaluation_batches(transform, eval_records),
                                         label_map.num_classes, label_map.ignore_label, label_map.class_names)
    one_image = representative[:1]
    reference_input = tf.constant(one_image)
    latencies = {REFERENCE: tflite.median_latency_ms(lambda: serving(reference_input, training=False).numpy(),
                                                     config.latency_runs)}
    latencies.update({variant: tflite.median_latency_ms(lambda segmenter=segmenter: segmenter.raw_output(one_image),
                                                        config.latency_runs)
                      for variant, segmenter in segmenters.items()})
    return Measurements(image_size=image_size, contents=contents, results=results, latencies_ms=latencies,
                        tensors={variant: segmenter.tensor_descriptions() for variant, segmenter in segmenters.items()},
                        calibration={"split": train_split, **calibration},
                        normalization=transform_constants(transform, train_records))


def write_tflite_models(measured: Measurements, label_map: LabelMap, eval_split: str, resize: str,
                        max_miou_drop: float, out_dir: str, max_image_pixels: int | None = None) -> dict:
    """Writes the accepted TFLite files, the refused ones under `refused/`, and the side JSON; returns the JSON's
    content. A variant is refused when it loses more than `max_miou_drop` mIoU against the SavedModel."""
    reference_miou = measured.results[REFERENCE].miou
    variants = {}
    for variant, content in measured.contents.items():
        result = measured.results[variant]
        accepted = tflite.is_accepted(reference_miou, result.miou, max_miou_drop)
        file_name = artifacts.TFLITE_FILES[variant]
        relative_path = file_name if accepted else f"{artifacts.TFLITE_REFUSED_DIR}/{file_name}"
        tf.io.gfile.makedirs(os.path.dirname(os.path.join(out_dir, relative_path)))
        with tf.io.gfile.GFile(os.path.join(out_dir, relative_path), "wb") as output:
            output.write(content)
        drop = tflite.miou_drop(reference_miou, result.miou)
        variants[variant] = {"status": "accepted" if accepted else "refused", "file": relative_path,
                             "size_bytes": len(content), "latency_ms": round(measured.latencies_ms[variant], 3),
                             "miou_drop": drop, **_scores(result), **measured.tensors[variant]}
        if accepted:
            logger.info("TFLite %s: mIoU %.4f (%+.4f against the SavedModel), %d bytes, %.2f ms", variant,
                        result.miou or 0.0, -drop, len(content), measured.latencies_ms[variant])
        else:
            logger.warning("TFLite %s REFUSED: mIoU %.4f is %.4f below the SavedModel's %.4f, more than "
                           "export.max_miou_drop %.4f; written to %s for inspection only, not pushable",
                           variant, result.miou or 0.0, drop, reference_miou or 0.0, max_miou_drop, relative_path)
    fitting = {
        "fit": "resize the image so that it fits image_size keeping its aspect ratio (bilinear) and pad the bottom "
               "and right with padding_pixel",
        "fill": "resize the image so that it covers image_size keeping its aspect ratio (bilinear) and crop its "
                "centre to image_size",
    }.get(resize, "resize the image to image_size (bilinear)")
    document = {
        "image_size": list(measured.image_size),
        "input": {
            "layout": "NHWC float32 RGB (int8 for the int8 model), one image: [1, H, W, 3]",
            "preprocessing": f"{fitting}; then x = (pixel - normalization_mean) / normalization_std per channel, "
                             "pixels 0-255; the int8 model's input is q = round(x / scale) + zero_point, clipped "
                             "to [-128, 127] (its input quantization)",
            "resize": resize,
            "normalization_mean": measured.normalization[features.NORMALIZATION_MEAN],
            "normalization_std": measured.normalization[features.NORMALIZATION_STD],
            "padding_pixel": measured.normalization[features.PIXEL_MEAN],
        },
        "output": "per-class logits [1, H, W, classes] (int8 ones quantized with the output's scale and zero "
                  "point); a pixel's class id is the argmax over the last axis; with fit, crop to the part the "
                  "image covers before resizing back to the image; with fill, extend the map over the cropped-away "
                  "borders by repeating its edge",
        "classes": [{"id": class_id, "name": name, "color": list(color)}
                    for class_id, (name, color) in enumerate(zip(label_map.class_names, label_map.colors))],
        "label_map": label_map.name,
        "ignore_label": label_map.ignore_label,
        "max_miou_drop": max_miou_drop,
        "max_image_pixels": max_image_pixels or ExportConfig().max_image_pixels,
        "evaluation": {"split": eval_split, "images": measured.results[REFERENCE].num_images},
        "calibration": measured.calibration,
        "reference": {"format": "saved_model", "latency_ms": round(measured.latencies_ms[REFERENCE], 3),
                      **_scores(measured.results[REFERENCE])},
        "variants": variants,
    }
    with tf.io.gfile.GFile(os.path.join(out_dir, artifacts.TFLITE_METADATA_FILE), "w") as output:
        json.dump(document, output, indent=1)
    return document


@tfx.dsl.components.component
def TFLiteExport(
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
    tflite_models: tfx.dsl.components.OutputArtifact[artifacts.TFLiteModels],
    label_map: tfx.dsl.components.Parameter[str],
    train_split: tfx.dsl.components.Parameter[str],
    eval_split: tfx.dsl.components.Parameter[str],
    resize: tfx.dsl.components.Parameter[str],
    export_config: tfx.dsl.components.Parameter[str],
):
    """Writes the TFLite models and their side JSON into `tflite_models.uri`; the artifact's properties hold
    each variant's mIoU and which were refused.

    `resize` is `preprocessing.resize` (the side JSON describes the input with it); `export_config` the
    `export` section as JSON.
    """
    labels = load_label_map(label_map)
    config = ExportConfig.from_dict(json.loads(export_config))
    measured = measure(os.path.join(model.uri, artifacts.SERVING_MODEL_DIR), examples.uri, labels, train_split,
                       eval_split, config)
    document = write_tflite_models(measured, labels, eval_split, resize, config.max_miou_drop, tflite_models.uri,
                                   max_image_pixels=config.max_image_pixels)
    for variant, report in document["variants"].items():
        tflite_models.set_float_custom_property(f"miou_{variant}", float(report["miou"] or 0.0))
    tflite_models.set_float_custom_property(f"miou_{REFERENCE}", float(document["reference"]["miou"] or 0.0))
    tflite_models.set_string_custom_property(
        "refused", ",".join(variant for variant, report in document["variants"].items()
                            if report["status"] == "refused"))
