"""TFMA adapter: segmentation metrics at the original label resolution, per slice.

`SegmentationMetrics` is a `tfma.metrics.Metric` whose combiner feeds each example into the
framework-free `components.core.metrics.SegmentationEvaluator`:
- the ground truth is the example's own class-mask PNG (raw feature, original resolution);
- the prediction is the model's `class_ids` output, cropped to the part that shows the image (its
  `content_size` output: the transform's aspect-keeping resize pads the rest) and resized back to that
  resolution with nearest neighbour (`prediction_at_image_size`), so scores do not depend on the
  model's input size.

It reports, for each model (candidate and baseline) and slice, the flat metrics of
`EvaluationResult.to_metrics` (names in `components.core.evaluation_result`): mIoU under the metric's
own name (`miou` by default, so that a `MetricConfig.threshold` on this metric is a threshold on mIoU),
`pixel_accuracy`, `mean_dice`, `hd`, `hd95`, `hd_pairs`, `hd_one_empty`, per class `iou/<class>`,
`dice/<class>`, `hd/<class>`, `hd95/<class>`, `hd_pairs/<class>`, `hd_one_empty/<class>` (classes
without a defined value are left out, not reported as 0), and the `confusion_matrix` itself (an array
value), so that `EvaluationResult.from_metrics` can rebuild the framework-free result for reports.
"""

from __future__ import annotations

from typing import Iterator

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.utils import util

from components.core import features
from components.core.evaluation_result import MIOU, SUMMARY_METRICS
from components.core.examples import decode_mask_png
from components.core.label_maps import load_label_map
from components.core.metrics import SegmentationEvaluator, prediction_at_image_size
from components.log_setup import quiet_beam_worker


def _single_bytes(value) -> bytes:
    """TFMA's features hold one-value features as numpy arrays: the bytes inside."""
    return value.reshape(-1)[0] if isinstance(value, np.ndarray) else value


EXAMPLE_SCORES_KEY = "segpipe_example_scores"


def new_evaluator(label_map: str, hausdorff: bool) -> SegmentationEvaluator:
    """An empty evaluator for the classes and ignore label of `label_map`."""
    labels = load_label_map(label_map)
    return SegmentationEvaluator(labels.num_classes, ignore_label=labels.ignore_label, compute_hausdorff=hausdorff)


class OriginalResolutionPreprocessor(metric_types.Preprocessor):
    """Scores one example of one model at the label resolution, once, before TFMA fans it out to slices.

    TFMA runs a metric's preprocessors once per example and its combiners once per (example, slice);
    an example falls into ~8 slices here (overall, dataset, split, city, size bucket, each class
    present), so the scoring itself (validation, confusion matrix, Hausdorff) happens here and the
    combiners only merge the small per-example `SegmentationEvaluator`s.
    """

    def __init__(self, label_map: str, hausdorff: bool, model_name: str = ""):
        super().__init__(name=f"segpipe_original_resolution_{model_name or 'model'}")
        self._label_map = label_map
        self._hausdorff = hausdorff
        self._model_name = model_name

    def setup(self) -> None:
        quiet_beam_worker()

    def process(self, extracts) -> Iterator[metric_types.StandardMetricInputs]:
        extracts = util.StandardExtracts(extracts)
        ground_truth = decode_mask_png(_single_bytes(extracts.get_features()[features.MASK_ENCODED]))
        prediction = extracts.get_predictions(self._model_name)
        content_size = None
        if isinstance(prediction, dict):
            content_size = prediction.get(features.CONTENT_SIZE)
            prediction = prediction[features.CLASS_IDS]
        prediction = np.asarray(prediction)
        prediction = prediction_at_image_size(prediction.reshape(prediction.shape[-2:]), content_size,
                                              ground_truth.shape)
        scores = new_evaluator(self._label_map, self._hausdorff)
        scores.add(ground_truth, prediction)
        yield metric_types.StandardMetricInputs({EXAMPLE_SCORES_KEY: scores})


class _SegmentationCombiner(beam.CombineFn):
    """Merges the per-example `SegmentationEvaluator`s of one slice."""

    def __init__(self, key: metric_types.MetricKey, label_map: str, hausdorff: bool):
        self._key = key
        self._label_map = label_map
        self._hausdorff = hausdorff

    def setup(self) -> None:
        quiet_beam_worker()

    def create_accumulator(self) -> SegmentationEvaluator:
        return new_evaluator(self._label_map, self._hausdorff)

    def add_input(self, accumulator: SegmentationEvaluator, element) -> SegmentationEvaluator:
        return accumulator.merge(element[EXAMPLE_SCORES_KEY])

    def merge_accumulators(self, accumulators) -> SegmentationEvaluator:
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator: SegmentationEvaluator) -> dict:
        metrics = accumulator.result(load_label_map(self._label_map).class_names).to_metrics()
        return {self._key._replace(name=self._key.name if name == MIOU else name): value
                for name, value in metrics.items()}


def _segmentation_computations(label_map: str, hausdorff: bool = True, name: str = MIOU,
                               model_name: str = "", output_name: str = "", example_weighted: bool = False,
                               **unused) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    return [metric_types.MetricComputation(
        keys=[key] + [key._replace(name=metric) for metric in SUMMARY_METRICS if metric != MIOU],
        preprocessors=[OriginalResolutionPreprocessor(label_map, hausdorff, model_name)],
        combiner=_SegmentationCombiner(key, label_map, hausdorff))]


class SegmentationMetrics(metric_types.Metric):
    """mIoU, pixel accuracy, Dice and boundary Hausdorff (HD, HD95) at the original label resolution.

    Args:
        label_map: name of the label map ("pascal_voc" or "cityscapes"): classes and metric names.
        hausdorff: also compute per-image, per-class Hausdorff distances.
        name: the metric's name, which is also the name of its headline value, mIoU.
    """

    def __init__(self, label_map: str, hausdorff: bool = True, name: str = MIOU):
        super().__init__(metric_util.merge_per_key_computations(_segmentation_computations),
                         label_map=label_map, hausdorff=hausdorff, name=name)


metric_types.register_metric(SegmentationMetrics)
