"""The `EvaluationReport` TFX component: human-readable evaluation artifacts.

From the Evaluator's output it writes the per-class table (`per_class.json`, `per_class.md`) and the
confusion-matrix image of the overall slice; from the evaluation split and the candidate model it
writes overlay panels (image | ground truth | prediction, in the dataset's colours) for the first
few examples of every slice value, under `overlays/<feature>-<value>/<image id>.png`.
"""

import io
import os
import re
from typing import Iterator

import numpy as np
import tensorflow as tf
from PIL import Image
from tfx import v1 as tfx
from tfx.types import standard_artifacts

from components.artifacts import SERVE_EXAMPLES, SERVING_MODEL_DIR, SegmentationReport
from components.core import features
from components.core.evaluation_result import EvaluationResult
from components.core.examples import decode_mask_png, parsing_feature_spec
from components.core.label_maps import LabelMap, load_label_map
from components.core.metrics import prediction_at_image_size
from components.core.preprocessing import size_bucket
from components.core.reports import write_evaluation_report, write_overlay
from components.evaluation_reader import load_metrics_by_slice
from components.evaluator.eval_config import slice_features

OVERLAYS_DIR = "overlays"


def split_files(examples_uri: str, split: str) -> list[str]:
    """The TFRecord files of one split of an Examples artifact."""
    return tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))


def slice_values(parsed: dict, size_bucket: str, label_map: LabelMap) -> list[str]:
    """The slice folders one example belongs to, e.g. `split-val`, `classes_present-person`."""
    values = ["all"]
    for name in slice_features(label_map.name):
        if name == features.CLASSES_PRESENT:
            values += [f"{name}-{label_map.class_names[class_id]}"
                       for class_id in tf.sparse.to_dense(parsed[name]).numpy() if 0 <= class_id < label_map.num_classes]
        elif name == features.SIZE_BUCKET:
            values.append(f"{name}-{size_bucket}")
        elif parsed[name].numpy():
            values.append(f"{name}-{parsed[name].numpy().decode()}")
    return values


def select_examples(files: list[str], label_map: LabelMap, per_slice: int) -> Iterator[tuple]:
    """Yields (serialized, parsed example, slice folders) for the first `per_slice` examples of each slice value."""
    taken: dict[str, int] = {}
    feature_spec = parsing_feature_spec()
    for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        parsed = tf.io.parse_single_example(serialized, feature_spec)
        bucket = size_bucket(parsed[features.IMAGE_HEIGHT], parsed[features.IMAGE_WIDTH]).numpy()[0].decode()
        wanted = [value for value in slice_values(parsed, bucket, label_map) if taken.get(value, 0) < per_slice]
        if wanted:
            for value in wanted:
                taken[value] = taken.get(value, 0) + 1
            yield serialized, parsed, wanted


def write_overlays(files: list[str], model_dir: str, label_map: LabelMap, out_dir: str, per_slice: int) -> int:
    """Predicts the selected examples and writes their overlay panels; returns how many were written."""
    model = tf.saved_model.load(model_dir)
    serve = model.signatures[SERVE_EXAMPLES]
    written = 0
    for serialized, parsed, folders in select_examples(files, label_map, per_slice):
        image = np.asarray(Image.open(io.BytesIO(parsed[features.IMAGE_ENCODED].numpy())).convert("RGB"))
        ground_truth = decode_mask_png(parsed[features.MASK_ENCODED].numpy())
        served = serve(examples=tf.reshape(serialized, [1]))
        prediction = prediction_at_image_size(served[features.CLASS_IDS].numpy()[0].astype(np.uint8),
                                              served[features.CONTENT_SIZE].numpy()[0], ground_truth.shape)
        name = re.sub(r"[^\w.-]", "_", parsed[features.IMAGE_ID].numpy().decode()) + ".png"
        for folder in folders:
            write_overlay(image, ground_truth, prediction, label_map,
                          os.path.join(out_dir, OVERLAYS_DIR, re.sub(r"[^\w.-]", "_", folder), name))
            written += 1
    return written


@tfx.dsl.components.component
def EvaluationReport(
    examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
    evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation],
    report: tfx.dsl.components.OutputArtifact[SegmentationReport],
    label_map: tfx.dsl.components.Parameter[str],
    eval_split: tfx.dsl.components.Parameter[str],
    overlays_per_slice: tfx.dsl.components.Parameter[int] = 2,
):
    """Writes the per-class table, the confusion-matrix image and overlays into `report.uri`."""
    labels = load_label_map(label_map)
    overall = load_metrics_by_slice(evaluation.uri).get((), {})
    write_evaluation_report(EvaluationResult.from_metrics(overall, labels.class_names), labels.class_names, report.uri)
    count = write_overlays(split_files(examples.uri, eval_split), os.path.join(model.uri, SERVING_MODEL_DIR),
                           labels, report.uri, overlays_per_slice)
    report.set_int_custom_property("overlays", count)
