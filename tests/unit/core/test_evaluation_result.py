"""Tests of components.core.evaluation_result: the typed result, its names and its flat forms."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from components.core.evaluation_result import (
    CONFUSION_MATRIX,
    HAUSDORFF_COMPUTED,
    MIOU,
    PER_CLASS_METRICS,
    SUMMARY_METRICS,
    EvaluationResult,
    HausdorffScores,
)
from components.core.metrics import SegmentationEvaluator

NAMES = ["background", "cat", "dog"]
GT = np.array([[0, 0, 1, 1], [0, 2, 1, 255]])
PRED = np.array([[0, 0, 1, 0], [0, 0, 1, 2]])

SCORE_KEYS = [
    "miou", "per_class_iou", "pixel_accuracy", "mean_dice", "per_class_dice", "mean_volume_error",
    "per_class_volume_error", "evaluated_pixels", "classes_in_mean",
    "hd", "hd95", "per_class_hd", "per_class_hd95", "hd_pairs", "per_class_hd_pairs", "hd_one_empty",
    "per_class_hd_one_empty",
]
"""The keys of ``segpipe score``'s JSON before its context keys, in the order it prints them."""


def _result(hausdorff: bool = True) -> EvaluationResult:
    evaluator = SegmentationEvaluator(len(NAMES), compute_hausdorff=hausdorff)
    evaluator.add(GT, PRED)
    return evaluator.result(NAMES)


def test_to_dict_has_the_layout_segpipe_score_prints() -> None:
    scored = dataclasses.replace(_result(), format="voc", num_images=1, unmatched_predictions=0)
    document = scored.to_dict()
    assert list(document) == SCORE_KEYS + ["format", "class_names", "num_images", "unmatched_predictions",
                                           "confusion_matrix"]
    assert document["class_names"] == NAMES
    assert document["confusion_matrix"] == [[3, 0, 0], [1, 2, 0], [1, 0, 0]]
    assert all(type(count) is int for row in document["confusion_matrix"] for count in row)
    assert list(document["per_class_hd_pairs"]) == NAMES
    json.dumps(document, allow_nan=False)
    # Without context, only what is known is written.
    assert list(_result().to_dict()) == SCORE_KEYS + ["class_names", "confusion_matrix"]


def test_every_name_is_a_key_of_the_dict_form() -> None:
    document = _result().to_dict()
    assert SUMMARY_METRICS[0] == MIOU
    assert set(SUMMARY_METRICS) | set(PER_CLASS_METRICS.values()) | {CONFUSION_MATRIX, HAUSDORFF_COMPUTED} <= set(document)
    assert {field.name for field in dataclasses.fields(HausdorffScores)} <= set(document)


def test_hausdorff_not_computed_is_null_in_every_form() -> None:
    result = _result(hausdorff=False)
    assert result.hausdorff is None
    document = result.to_dict()
    assert list(document)[:len(SCORE_KEYS)] == SCORE_KEYS
    assert document["hd"] is None and document["hd_pairs"] is None
    assert document["per_class_hd95"] == {name: None for name in NAMES}
    assert result.summary()["hd95"] is None and result.class_scores("cat")["hd_pairs"] is None
    assert not {name for name in result.to_metrics() if name.startswith("hd")}
    assert EvaluationResult.from_dict(document) == result


def test_dict_and_metric_forms_round_trip() -> None:
    result = _result()
    assert EvaluationResult.from_dict(result.to_dict()) == result
    assert EvaluationResult.from_dict(result) is result
    metrics = result.to_metrics()
    assert metrics[MIOU] == result.miou and metrics["iou/cat"] == result.per_class_iou["cat"]
    assert metrics[CONFUSION_MATRIX].dtype == np.int64
    as_doubles = {name: float(value) if isinstance(value, int) else value for name, value in metrics.items()}
    rebuilt = EvaluationResult.from_metrics({**as_doubles, "example_count": 2.0}, NAMES)
    assert rebuilt.hausdorff == result.hausdorff
    assert type(rebuilt.hausdorff.hd_pairs) is int and type(rebuilt.hausdorff.per_class_hd_one_empty["dog"]) is int
    assert rebuilt.evaluated_pixels is None and rebuilt.classes_in_mean is None
    assert dataclasses.replace(rebuilt, evaluated_pixels=result.evaluated_pixels,
                               classes_in_mean=result.classes_in_mean) == result


def test_class_scores_and_summary_use_the_metric_names() -> None:
    result = _result()
    assert list(result.summary()) == list(SUMMARY_METRICS)
    cat = result.class_scores("cat")
    assert list(cat) == list(PER_CLASS_METRICS)
    assert cat["iou"] == result.per_class_iou["cat"] and cat["hd95"] == result.hausdorff.per_class_hd95["cat"]
    with pytest.raises(ValueError, match="class 'horse' is not in the result's 'per_class_iou'"):
        result.class_scores("horse")


def test_inconsistent_results_are_rejected_and_results_are_frozen_copies() -> None:
    result = _result()
    with pytest.raises(ValueError, match="per_class_dice has the classes"):
        dataclasses.replace(result, per_class_dice={"cat": 1.0})
    with pytest.raises(ValueError, match="per_class_hd95 has the classes"):
        dataclasses.replace(result, hausdorff=dataclasses.replace(result.hausdorff, per_class_hd95={}))
    with pytest.raises(ValueError, match="confusion matrix of shape"):
        dataclasses.replace(result, confusion_matrix=np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="not an evaluation result: it has no 'per_class_dice'"):
        EvaluationResult.from_dict({key: value for key, value in result.to_dict().items() if key != "per_class_dice"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.miou = 1.0  # type: ignore[misc]
    iou = dict(result.per_class_iou)
    copy = dataclasses.replace(result, per_class_iou=iou)
    iou["cat"] = -1.0
    assert copy.per_class_iou == result.per_class_iou
