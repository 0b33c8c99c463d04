"""Builds the TFMA `EvalConfig` of the pipeline's Evaluator and reads its results back.

The candidate (and the last blessed baseline) is run through its `serve_examples` signature on
serialized examples; `SegmentationMetrics` scores its `class_ids` against each example's own mask at
the original resolution. Slices: overall, by dataset, split, Cityscapes city, class present, and the
image-size bucket (a feature derived by the model's `slice_features` signature). Blessing needs
mIoU >= `miou_threshold` and, when a last blessed model exists, an mIoU at most `miou_max_drop` below it.
"""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from components import artifacts
from components.core import datasets, features
from components.core.evaluation_result import MIOU

SLICE_FEATURES = (features.DATASET, features.SPLIT, features.CLASSES_PRESENT, features.SIZE_BUCKET)
CITY_SLICE_FEATURES = (features.CITY,)  # only for datasets with cities: elsewhere it would repeat the overall slice


def slice_features(label_map: str) -> tuple[str, ...]:
    """The features the Evaluator (and the report's overlays) slice on for the dataset of `label_map`."""
    has_cities = any(layout.LABEL_MAP == label_map and layout.HAS_CITIES for layout in datasets.LAYOUTS)
    return SLICE_FEATURES + (CITY_SLICE_FEATURES if has_cities else ())


def build_eval_config(label_map: str, miou_threshold: float, miou_max_drop: float,
                      hausdorff: bool = True) -> tfma.EvalConfig:
    """The Evaluator's config: segmentation metrics per slice, with value and change thresholds on mIoU."""
    blessing_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": miou_threshold}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -miou_max_drop}))
    metrics = [
        tfma.MetricConfig(class_name="ExampleCount"),
        # Its name is that of its headline value, so the threshold applies to mIoU (overall slice).
        tfma.MetricConfig(class_name="SegmentationMetrics", module="components.evaluator.segmentation_metrics",
                          config=json.dumps({"label_map": label_map, "hausdorff": hausdorff, "name": MIOU}),
                          threshold=blessing_threshold),
    ]
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=artifacts.SERVE_EXAMPLES,
                                    preprocessing_function_names=[artifacts.SLICE_FEATURES])],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[name])
                                              for name in slice_features(label_map)],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)])


def set_miou_threshold(eval_config: tfma.EvalConfig, miou_threshold: float) -> tfma.EvalConfig:
    """`eval_config` (changed in place and returned) with the lower bound of its mIoU value threshold
    (the blessing's) set to `miou_threshold`.

    Raises:
        ValueError: `eval_config` has no mIoU metric with a value threshold (not `build_eval_config`'s).
    """
    thresholds = [metric.threshold.value_threshold for spec in eval_config.metrics_specs for metric in spec.metrics
                  if metric.class_name == "SegmentationMetrics" and metric.threshold.HasField("value_threshold")]
    if not thresholds:
        raise ValueError("the eval config has no SegmentationMetrics value threshold to set the mIoU threshold of")
    for threshold in thresholds:
        threshold.lower_bound.value = miou_threshold
    return eval_config
