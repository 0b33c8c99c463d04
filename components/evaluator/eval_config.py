"""Builds the TFMA `EvalConfig` of the pipeline's Evaluator and reads its results back.

The candidate model is evaluated through its `serving_default` signature on serialized examples;
labels are the transformed `mask` feature from its `transform_features` signature. mIoU is computed
by `SegmentationMeanIoU` (confusion matrix over the whole split, label 255 ignored) overall and per
slice. Blessing needs mIoU >= `miou_threshold` and, when a last blessed model exists, an mIoU at most
`miou_max_drop` below it.
"""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from components.core import features

MIOU = "miou"
SLICE_FEATURES = (features.DATASET, features.SPLIT)


def build_eval_config(num_classes: int, miou_threshold: float, miou_max_drop: float) -> tfma.EvalConfig:
    """The Evaluator's config: mIoU overall and per dataset/split, with value and change thresholds."""
    miou = tfma.MetricConfig(
        class_name="SegmentationMeanIoU",
        module="components.core.keras_metrics",
        config=json.dumps({"num_classes": num_classes, "name": MIOU}),
        threshold=tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(lower_bound={"value": miou_threshold}),
            change_threshold=tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -miou_max_drop})))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default",
                                    preprocessing_function_names=["transform_features"],
                                    label_key=features.MASK,
                                    prediction_key=features.PROBABILITIES)],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[name]) for name in SLICE_FEATURES],
        metrics_specs=[tfma.MetricsSpec(metrics=[miou])])


def load_slice_metrics(evaluation_uri: str) -> dict[str, float]:
    """Reads an Evaluator output into flat MLflow-friendly names.

    Returns:
        `{metric: value}` for the overall slice and `{metric/feature/value: value}` for the others.
        Metrics of the baseline model and diffs against it are left out.
    """
    result = tfma.load_eval_result(evaluation_uri)
    flat = {}
    for slice_key, outputs in result.slicing_metrics:
        suffix = "".join(f"/{name}/{_slice_value(value)}" for name, value in slice_key)
        for sub_keys in outputs.values():
            for metrics in sub_keys.values():
                for name, value in metrics.items():
                    if "doubleValue" in value:
                        flat[f"{name}{suffix}"] = float(value["doubleValue"])
    return flat


def _slice_value(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
