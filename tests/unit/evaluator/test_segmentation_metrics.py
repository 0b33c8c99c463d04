"""The TFMA adapter: the same figures as the framework-free evaluator, at label resolution, thresholds wired."""

from __future__ import annotations

import io

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing import util as beam_testing
from PIL import Image
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.metrics import metric_specs, metric_types

from components.core import features
from components.core.evaluation_result import CONFUSION_MATRIX, EvaluationResult
from components.core.label_maps import load_label_map
from components.core.metrics import SegmentationEvaluator, resize_nearest
from components.evaluator.eval_config import build_eval_config
from components.evaluator.segmentation_metrics import (EXAMPLE_SCORES_KEY, OriginalResolutionPreprocessor,
                                                        SegmentationMetrics)

VOC = load_label_map("pascal_voc")


def _png(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _random_pair(rng, shape=(12, 16), model_shape=(6, 8)):
    ground_truth = rng.choice([0, 3, 15, 255], size=shape, p=[0.5, 0.2, 0.2, 0.1]).astype(np.uint8)
    ground_truth[2:7, 3:9] = 15
    prediction = rng.choice([0, 3, 15], size=model_shape).astype(np.int64)
    prediction[1:4, 2:5] = 15
    return ground_truth, prediction


def _extracts(ground_truth, prediction):
    return {constants.FEATURES_KEY: {features.MASK_ENCODED: np.array([_png(ground_truth)], dtype=object)},
            constants.PREDICTIONS_KEY: {features.CLASS_IDS: prediction,
                                        features.PROBABILITIES: np.zeros(prediction.shape + (21,))}}


def test_preprocessor_scores_predictions_resized_to_the_label_resolution():
    ground_truth, prediction = _random_pair(np.random.default_rng(0))
    (inputs,) = OriginalResolutionPreprocessor("pascal_voc", hausdorff=True).process(
        _extracts(ground_truth, prediction))
    expected = SegmentationEvaluator(VOC.num_classes)
    expected.add(ground_truth, resize_nearest(prediction, ground_truth.shape))
    scores = inputs[EXAMPLE_SCORES_KEY]
    np.testing.assert_array_equal(scores.confusion.matrix, expected.confusion.matrix)
    assert scores.result(VOC.class_names) == expected.result(VOC.class_names)


def test_flat_metrics_round_trip_to_a_report_result():
    rng = np.random.default_rng(1)
    evaluator = SegmentationEvaluator(VOC.num_classes)
    for _ in range(3):
        ground_truth, prediction = _random_pair(rng)
        evaluator.add(ground_truth, resize_nearest(prediction, ground_truth.shape))
    result = evaluator.result(VOC.class_names)
    flat = result.to_metrics()
    assert "iou/aeroplane" not in flat  # absent from both: left out, not 0
    np.testing.assert_array_equal(flat[CONFUSION_MATRIX], evaluator.confusion.matrix)
    rebuilt, result = EvaluationResult.from_metrics(flat, VOC.class_names).to_dict(), result.to_dict()
    for key in ("miou", "pixel_accuracy", "mean_dice", "hd", "hd95", "hd_pairs", "hd_one_empty",
                "per_class_iou", "per_class_dice", "per_class_hd95", "per_class_hd_one_empty"):
        assert rebuilt[key] == result[key], key
    np.testing.assert_array_equal(rebuilt[CONFUSION_MATRIX], evaluator.confusion.matrix)


def test_tfma_computation_in_beam_matches_the_framework_free_evaluator():
    rng = np.random.default_rng(2)
    pairs = [_random_pair(rng) for _ in range(4)]
    expected = SegmentationEvaluator(VOC.num_classes)
    for ground_truth, prediction in pairs:
        expected.add(ground_truth, resize_nearest(prediction, ground_truth.shape))
    expected_flat = expected.result(VOC.class_names).to_metrics()
    np.testing.assert_array_equal(expected_flat.pop(CONFUSION_MATRIX), expected.confusion.matrix)
    (computation,) = SegmentationMetrics(label_map="pascal_voc").computations(example_weighted=False)

    def check(outputs):
        (output,) = outputs
        values = {key.name: value for key, value in output.items()}
        np.testing.assert_array_equal(values.pop(CONFUSION_MATRIX), expected.confusion.matrix)
        assert values.keys() == expected_flat.keys()
        for name, value in expected_flat.items():
            assert values[name] == pytest.approx(value, abs=1e-12), name

    with beam.Pipeline() as pipeline:
        outputs = (pipeline
                   | beam.Create([_extracts(*pair) for pair in pairs])
                   | beam.ParDo(computation.preprocessors[0])
                   | beam.CombineGlobally(computation.combiner))
        beam_testing.assert_that(outputs, check)


def test_blessing_thresholds_apply_to_the_miou_the_metric_reports():
    eval_config = build_eval_config("pascal_voc", miou_threshold=0.4, miou_max_drop=0.02)
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(eval_config.metrics_specs, eval_config)
    (computation,) = SegmentationMetrics(label_map="pascal_voc").computations(example_weighted=False)
    miou_key = metric_types.MetricKey(name="miou", example_weighted=False)
    assert miou_key in computation.keys
    (value_threshold,) = [threshold for _, threshold in thresholds[miou_key]]
    assert value_threshold.lower_bound.value == pytest.approx(0.4)
    (change_threshold,) = [threshold for _, threshold in thresholds[miou_key.make_diff_key()]]
    assert change_threshold.absolute.value == pytest.approx(-0.02)


@pytest.mark.parametrize("label_map, city_sliced", [("pascal_voc", False), ("cityscapes", True)])
def test_slices_cover_dataset_split_classes_size_and_cityscapes_cities(label_map, city_sliced):
    eval_config = build_eval_config(label_map, miou_threshold=0.0, miou_max_drop=1.0)
    sliced = [list(spec.feature_keys) for spec in eval_config.slicing_specs]
    assert sliced[0] == []  # overall
    assert {"dataset", "split", "classes_present", "size_bucket"} <= {keys[0] for keys in sliced[1:]}
    assert (["city"] in sliced) == city_sliced
