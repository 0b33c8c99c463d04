"""Tests of components.core.metrics: hand-computed known answers, input validation, the combined
evaluator, and agreement with the reference implementation (cityscapesscripts for IoU). The Hausdorff
distances are tested in test_hausdorff.py."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import types

import numpy as np
import pytest
from PIL import Image

from components.core.hausdorff import HausdorffAccumulator
from components.core.metrics import (
    ConfusionMatrix,
    SegmentationEvaluator,
    confusion_matrix,
    per_class_dice,
    per_class_iou,
    pixel_accuracy,
    resize_nearest,
    scores_from_confusion,
)

CITYSCAPES_GT_LABEL_IDS = (
    "cityscapes_sample/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png"
)


# --------------------------------------------------------------------------------------------------
# Confusion matrix, IoU, Dice, pixel accuracy: known answers
# --------------------------------------------------------------------------------------------------

# 4 classes, class 3 absent from both maps; the 255 pixel is ignored whatever is predicted there.
GT = np.array([[0, 0, 1], [1, 2, 255]], dtype=np.uint8)
PRED = np.array([[0, 1, 1], [1, 0, 2]], dtype=np.uint8)
NAMES = ["background", "cat", "dog", "bird"]
# pairs (gt, pred): (0,0) (0,1) (1,1) (1,1) (2,0)
EXPECTED_MATRIX = np.array([[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])


def test_confusion_matrix_counts_pairs_and_excludes_ignored_pixels() -> None:
    matrix = confusion_matrix(GT, PRED, num_classes=4)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, EXPECTED_MATRIX)
    other_prediction_on_ignored_pixel = PRED.copy()
    other_prediction_on_ignored_pixel[1, 2] = 3
    np.testing.assert_array_equal(confusion_matrix(GT, other_prediction_on_ignored_pixel, 4), EXPECTED_MATRIX)


def test_confusion_matrix_without_ignore_label_counts_every_pixel() -> None:
    gt = np.array([[0, 1], [2, 2]])
    pred = np.array([[0, 2], [2, 1]])
    expected = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 1]])
    np.testing.assert_array_equal(confusion_matrix(gt, pred, 3, ignore_label=None), expected)


def test_scores_known_answers_with_absent_class_left_out() -> None:
    scores = scores_from_confusion(EXPECTED_MATRIX, NAMES)
    # IoU = TP / (TP + FP + FN): background 1/(1+1+1), cat 2/(2+1+0), dog 0/(0+0+1), bird undefined.
    assert scores.per_class_iou == pytest.approx({"background": 1 / 3, "cat": 2 / 3, "dog": 0.0, "bird": None})
    assert scores.per_class_iou["bird"] is None
    assert scores.miou == pytest.approx((1 / 3 + 2 / 3 + 0.0) / 3)  # bird is neither 0 nor 1: left out
    # Dice = 2TP / (2TP + FP + FN): background 2/4, cat 4/5, dog 0/1.
    assert scores.per_class_dice == pytest.approx({"background": 0.5, "cat": 0.8, "dog": 0.0, "bird": None})
    assert scores.mean_dice == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert scores.pixel_accuracy == pytest.approx(3 / 5)
    assert scores.evaluated_pixels == 5
    assert scores.classes_in_mean == 3
    json.dumps(scores.to_dict(), allow_nan=False)  # JSON-able, no NaN


def test_class_only_predicted_counts_as_zero_in_the_mean() -> None:
    gt = np.array([[0, 0], [0, 0]])
    pred = np.array([[0, 0], [0, 1]])  # class 1 never in the ground truth: FP only -> IoU 0, in the mean
    scores = scores_from_confusion(confusion_matrix(gt, pred, 3), ["a", "b", "c"])
    assert scores.per_class_iou == {"a": pytest.approx(3 / 4), "b": 0.0, "c": None}
    assert scores.miou == pytest.approx((3 / 4 + 0.0) / 2)


def test_perfect_prediction_and_empty_matrix() -> None:
    gt = np.array([[0, 1], [1, 255]])
    perfect = scores_from_confusion(confusion_matrix(gt, np.array([[0, 1], [1, 0]]), 2), ["a", "b"])
    assert perfect.miou == 1.0 and perfect.pixel_accuracy == 1.0 and perfect.mean_dice == 1.0
    empty = scores_from_confusion(np.zeros((2, 2), dtype=np.int64), ["a", "b"])
    assert empty.miou is None and empty.pixel_accuracy is None and empty.mean_dice is None
    assert empty.per_class_iou == {"a": None, "b": None}
    json.dumps(empty.to_dict(), allow_nan=False)


def test_array_helpers_return_nan_for_undefined_classes() -> None:
    iou, dice = per_class_iou(EXPECTED_MATRIX), per_class_dice(EXPECTED_MATRIX)
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 0.0])
    np.testing.assert_allclose(dice[:3], [0.5, 0.8, 0.0])
    assert math.isnan(iou[3]) and math.isnan(dice[3])
    assert pixel_accuracy(EXPECTED_MATRIX) == pytest.approx(0.6)
    assert math.isnan(pixel_accuracy(np.zeros((2, 2))))


def test_accumulator_sums_images_and_merges() -> None:
    first, second = ConfusionMatrix(4), ConfusionMatrix(4)
    image_matrix = first.add(GT, PRED)
    np.testing.assert_array_equal(image_matrix, EXPECTED_MATRIX)
    first.add(GT, GT.clip(max=3))
    second.add(PRED, PRED)
    merged = first.merge(second)
    assert merged is first
    expected = EXPECTED_MATRIX + confusion_matrix(GT, GT.clip(max=3), 4) + confusion_matrix(PRED, PRED, 4)
    np.testing.assert_array_equal(first.matrix, expected)
    first.matrix[0, 0] = 999  # .matrix is a copy
    np.testing.assert_array_equal(first.matrix, expected)
    assert first.scores(NAMES) == scores_from_confusion(expected, NAMES)
    with pytest.raises(ValueError, match="num_classes"):
        first.merge(ConfusionMatrix(5))


# --------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------


def test_ground_truth_id_out_of_range_is_named() -> None:
    gt = np.array([[0, 7], [30, 255]], dtype=np.uint8)
    with pytest.raises(ValueError, match=r"gt holds ids outside \[0, 3\).*\[7, 30\]"):
        confusion_matrix(gt, np.zeros_like(gt), 3)


def test_prediction_id_out_of_range_is_named() -> None:
    gt = np.zeros((2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match=r"pred holds ids outside \[0, 3\).*\[-1, 3\]"):
        confusion_matrix(gt, np.array([[0, -1], [3, 1]]), 3)
    with pytest.raises(ValueError, match=r"\[255\]"):  # the ignore label is not a valid prediction
        confusion_matrix(gt, np.array([[0, 255], [1, 1]]), 3)


def test_ignore_label_none_makes_255_invalid() -> None:
    with pytest.raises(ValueError, match=r"\[255\]"):
        confusion_matrix(np.array([[0, 255]]), np.array([[0, 0]]), 3, ignore_label=None)


@pytest.mark.parametrize(
    ("gt", "pred", "error", "message"),
    [
        (np.zeros((2, 2), int), np.zeros((2, 3), int), ValueError, "same shape"),
        (np.zeros((2, 2), float), np.zeros((2, 2), int), TypeError, "integer"),
        (np.zeros((2, 2), int), np.zeros((2, 2), bool), TypeError, "integer"),
    ],
)
def test_bad_maps_are_rejected(gt, pred, error, message) -> None:
    with pytest.raises(error, match=message):
        confusion_matrix(gt, pred, 3)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(np.zeros((1, 1), int), np.zeros((1, 1), int), 0)
    with pytest.raises(ValueError, match="3 class names"):
        scores_from_confusion(EXPECTED_MATRIX, ["a", "b", "c"])
    with pytest.raises(ValueError, match="square"):
        scores_from_confusion(np.zeros((2, 3)), ["a", "b"])


# --------------------------------------------------------------------------------------------------
# The combined evaluator
# --------------------------------------------------------------------------------------------------


def test_evaluator_combines_both_reports() -> None:
    rng = np.random.default_rng(7)
    pairs = []
    for _ in range(3):
        gt = rng.integers(0, 4, (16, 20)).astype(np.uint8)
        gt[rng.random(gt.shape) < 0.1] = 255
        pairs.append((gt, rng.integers(0, 4, (16, 20))))
    evaluator, confusion, hausdorff = SegmentationEvaluator(4), ConfusionMatrix(4), HausdorffAccumulator(4)
    for gt, pred in pairs:
        evaluator.add(gt, pred)
        confusion.add(gt, pred)
        hausdorff.add(gt, pred)
    report = evaluator.result(NAMES)
    assert report == dataclasses.replace(confusion.scores(NAMES), hausdorff=hausdorff.result(NAMES),
                                         mean_volume_error=report.mean_volume_error,
                                         per_class_volume_error=report.per_class_volume_error)
    json.dumps(report.to_dict(), allow_nan=False)
    without_hausdorff = SegmentationEvaluator(4, compute_hausdorff=False)
    without_hausdorff.add(*pairs[0])
    assert without_hausdorff.result(NAMES).hausdorff is None
    with pytest.raises(ValueError, match=r"pred holds ids"):
        evaluator.add(pairs[0][0], pairs[0][1] + 4)


# --------------------------------------------------------------------------------------------------
# resize_nearest
# --------------------------------------------------------------------------------------------------


def test_resize_nearest_known_answers() -> None:
    small = np.array([[1, 2], [3, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(resize_nearest(small, (4, 4)), np.kron(small, np.ones((2, 2), np.uint8)))
    large = np.arange(16, dtype=np.int64).reshape(4, 4)
    down = resize_nearest(large, (2, 2))  # half-pixel centres: source rows/cols 1 and 3
    np.testing.assert_array_equal(down, [[5, 7], [13, 15]])
    assert down.dtype == np.int64
    with pytest.raises(ValueError):
        resize_nearest(small, (0, 4))
    with pytest.raises(ValueError):
        resize_nearest(np.zeros((2, 2, 3)), (4, 4))


@pytest.mark.parametrize(
    ("source", "target"), [((128, 256), (1024, 2048)), ((1024, 2048), (256, 512)), ((50, 75), (150, 150))]
)
def test_resize_nearest_matches_pillow_on_integer_ratios_and_keeps_ids(source, target) -> None:
    ids = np.random.default_rng(0).choice(np.array([0, 3, 7, 18, 255], np.uint8), size=source)
    resized = resize_nearest(ids, target)
    pillow = np.array(Image.fromarray(ids).resize(target[::-1], Image.NEAREST))
    np.testing.assert_array_equal(resized, pillow)
    assert set(np.unique(resized)) <= set(np.unique(ids))


# --------------------------------------------------------------------------------------------------
# Agreement with the reference implementation
# --------------------------------------------------------------------------------------------------


def test_miou_agrees_with_cityscapesscripts(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, cityscapes_evaluation
) -> None:
    """Official Cityscapes evaluation (confusion matrix over labelIds, getIouScoreForLabel) vs ours on trainIds.

    The prediction is what a model emits: trainIds everywhere (ignored regions included), with shifted
    boundaries and a block of random classes (some absent from the ground truth), written as labelIds.
    """
    from cityscapesscripts.helpers.labels import id2label, labels, trainId2label

    gt_path = shared_data / CITYSCAPES_GT_LABEL_IDS
    gt_label_ids = np.array(Image.open(gt_path))
    label_id_to_train_id = np.full(256, 255, dtype=np.uint8)
    for label in labels:
        if label.id >= 0 and not label.ignoreInEval:
            label_id_to_train_id[label.id] = label.trainId
    gt_train_ids = label_id_to_train_id[gt_label_ids]

    rng = np.random.default_rng(294)
    pred_train_ids = np.roll(np.where(gt_train_ids == 255, 0, gt_train_ids), shift=(3, -4), axis=(0, 1))
    # wall (3), traffic light (6), terrain (9) and rider (12) are absent from the ground truth (IoU 0,
    # in the mean); truck, bus, train, motorcycle and bicycle stay absent from both (left out).
    pred_train_ids[40:80, 100:180] = rng.choice([0, 1, 2, 3, 6, 8, 9, 13], size=(40, 80))
    pred_train_ids[0:10, :] = 12
    train_id_to_label_id = np.array([trainId2label[train_id].id for train_id in range(19)], dtype=np.uint8)
    pred_path = tmp_path / "frankfurt_000000_000294_pred_labelIds.png"
    Image.fromarray(train_id_to_label_id[pred_train_ids]).save(pred_path)

    reference_args = types.SimpleNamespace(evalInstLevelScore=False, evalPixelAccuracy=False, evalLabels=[])
    reference_matrix = cityscapes_evaluation.generateMatrix(reference_args)
    evaluated = cityscapes_evaluation.evaluatePair(
        str(pred_path), str(gt_path), reference_matrix, {}, {}, reference_args
    )
    assert evaluated == gt_label_ids.size
    reference_iou = {
        id2label[label_id].name: cityscapes_evaluation.getIouScoreForLabel(label_id, reference_matrix, reference_args)
        for label_id in reference_args.evalLabels
    }
    reference_miou = cityscapes_evaluation.getScoreAverage(reference_iou, reference_args)

    class_names = [trainId2label[train_id].name for train_id in range(19)]
    ours_matrix = confusion_matrix(gt_train_ids, pred_train_ids, 19)
    eval_label_ids = train_id_to_label_id.astype(int)
    np.testing.assert_array_equal(ours_matrix, reference_matrix[np.ix_(eval_label_ids, eval_label_ids)])
    scores = scores_from_confusion(ours_matrix, class_names)
    for name in class_names:
        reference = reference_iou[name]
        if math.isnan(reference):
            assert scores.per_class_iou[name] is None, name
        else:
            assert scores.per_class_iou[name] == pytest.approx(reference, abs=1e-6), name
    assert scores.per_class_iou["rider"] == 0.0 and scores.per_class_iou["wall"] == 0.0
    assert [name for name in class_names if scores.per_class_iou[name] is None] == [
        "truck", "bus", "train", "motorcycle", "bicycle"
    ]
    assert scores.miou == pytest.approx(reference_miou, abs=1e-6)


def test_invalid_ids_say_which_map_holds_them_and_survive_pickling() -> None:
    import pickle

    from components.core.class_maps import InvalidClassMapError

    with pytest.raises(InvalidClassMapError) as raised:
        confusion_matrix(np.array([[0, 1]]), np.array([[0, 5]]), num_classes=3)
    assert raised.value.side == "pred"
    copy = pickle.loads(pickle.dumps(raised.value))
    assert (copy.side, str(copy)) == ("pred", str(raised.value))
    with pytest.raises(InvalidClassMapError) as raised:
        confusion_matrix(np.array([[7, 1]]), np.array([[0, 1]]), num_classes=3)
    assert raised.value.side == "gt"


def test_relative_area_error_known_answer_averages_over_the_images_holding_the_class() -> None:
    # Image 1: gt class 1 covers 4 pixels, predicted on 6 (|6 - 4| / 4 = 0.5); class 2 absent from gt
    # (its 2 false pixels do not count for it). Image 2: class 1 covers 8, predicted on 6 (0.25); class 2
    # covers 4, predicted on 0 (1.0); the ignore pixel and what is predicted on it are left out.
    gt1 = np.zeros((4, 4), np.uint8)
    gt1[0] = 1
    pred1 = np.zeros((4, 4), np.uint8)
    pred1[0] = 1
    pred1[1, :2] = 1
    pred1[3, :2] = 2
    gt2 = np.zeros((4, 4), np.uint8)
    gt2[:2] = 1
    gt2[2] = 2
    gt2[3, 3] = 255
    pred2 = np.zeros((4, 4), np.uint8)
    pred2[0] = 1
    pred2[1, :2] = 1
    pred2[3, 3] = 1
    evaluator = SegmentationEvaluator(3, compute_hausdorff=False)
    evaluator.add(gt1, pred1)
    evaluator.add(gt2, pred2)
    result = evaluator.result(["a", "b", "c"])
    # Class 0: image 1 gt 12 / pred 8 (1/3), image 2 gt 3 / pred 9 (2).
    expected = {"a": (1 / 3 + 2) / 2, "b": (0.5 + 0.25) / 2, "c": 1.0}
    assert result.per_class_volume_error == pytest.approx(expected)
    assert result.mean_volume_error == pytest.approx(sum(expected.values()) / 3)
    merged = SegmentationEvaluator(3, compute_hausdorff=False)
    merged.add(gt1, pred1)
    other = SegmentationEvaluator(3, compute_hausdorff=False)
    other.add(gt2, pred2)
    assert merged.merge(other).result(["a", "b", "c"]).per_class_volume_error == pytest.approx(expected)
    assert result.to_metrics()["volume_error/c"] == 1.0 and "mean_volume_error" in result.to_dict()
