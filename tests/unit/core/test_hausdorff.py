"""Tests of components.core.hausdorff: hand-computed known answers, the per-image, per-class
accumulation, and agreement with the reference implementation (medpy for HD, HD95 and Dice)."""

from __future__ import annotations

import json
import math
import pathlib
import types

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from components.core.hausdorff import HausdorffAccumulator, boundary_distances, hausdorff_distances, mask_boundary
from components.core.metrics import confusion_matrix, per_class_dice

CITYSCAPES_GT_LABEL_IDS = (
    "cityscapes_sample/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png"
)


# --------------------------------------------------------------------------------------------------
# Reference implementations (installed from requirements.lock, section "test references")
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def medpy_binary() -> types.ModuleType:
    """medpy.metric.binary: the reference for hd, hd95 and dc."""
    import medpy.metric.binary

    return medpy.metric.binary


def _random_blob_masks(seed: int, shape: tuple[int, int], sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Two correlated, non-empty random masks (smooth blobs when sigma > 0, salt and pepper at 0)."""
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.standard_normal(shape), sigma) if sigma else rng.standard_normal(shape)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma / 2) if sigma else rng.standard_normal(shape)
    base, noise = base / base.std(), noise / noise.std()
    threshold = rng.uniform(-0.5, 1.0)
    gt_mask = base > threshold
    pred_mask = base + rng.uniform(0.1, 0.8) * noise > threshold
    gt_mask[rng.integers(shape[0]), rng.integers(shape[1])] = True  # never empty
    pred_mask[rng.integers(shape[0]), rng.integers(shape[1])] = True
    return gt_mask, pred_mask


# --------------------------------------------------------------------------------------------------
# Hausdorff distances: known answers
# --------------------------------------------------------------------------------------------------


def _mask(shape: tuple[int, int], *pixels_or_boxes: tuple) -> np.ndarray:
    """Boolean mask with single pixels (r, c) or boxes (r0, r1, c0, c1) (end-exclusive) set."""
    mask = np.zeros(shape, dtype=bool)
    for item in pixels_or_boxes:
        if len(item) == 2:
            mask[item] = True
        else:
            mask[item[0] : item[1], item[2] : item[3]] = True
    return mask


def test_single_pixels_are_3_4_5_apart() -> None:
    gt, pred = _mask((8, 10), (2, 3)), _mask((8, 10), (5, 7))
    assert hausdorff_distances(gt, pred) == (5.0, 5.0)


def test_hd95_interpolates_the_pooled_distances() -> None:
    # gt boundary {(0,0)}, pred boundary {(0,0), (0,4)}: pooled distances [0] + [0, 4] -> HD 4,
    # HD95 = percentile([0, 0, 4], 95) = 0 + (0.95 * 2 - 1) * 4 = 3.6.
    gt, pred = _mask((3, 6), (0, 0)), _mask((3, 6), (0, 0), (0, 4))
    hd, hd95 = hausdorff_distances(gt, pred)
    assert hd == 4.0
    assert hd95 == pytest.approx(3.6, abs=1e-12)


def test_squares_shifted_by_three_columns() -> None:
    # 4x4 squares, the second shifted 3 columns right: both rings have 12 pixels; the 4 on the shared
    # column are at 0, the rest at 1, 2 or 3 -> HD = 3; pooled: 8 zeros, 4 ones, 4 twos, 8 threes.
    gt, pred = _mask((10, 12), (2, 6, 2, 6)), _mask((10, 12), (2, 6, 5, 9))
    distances_gt, distances_pred = boundary_distances(gt, pred)
    assert sorted(distances_gt) == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3]
    assert sorted(distances_pred) == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3]
    assert hausdorff_distances(gt, pred) == (3.0, 3.0)
    # pixel spacing (rows, cols) scales the column shift only
    assert hausdorff_distances(gt, pred, spacing=(2.0, 0.5)) == (1.5, 1.5)
    transposed = hausdorff_distances(gt.T.copy(), pred.T.copy(), spacing=(0.5, 2.0))
    assert transposed == (1.5, 1.5)


def test_concentric_squares_corner_distance() -> None:
    # 3x3 inside 7x7: inner ring -> outer ring is 2 everywhere; the outer corners are sqrt(8) away.
    gt, pred = _mask((9, 9), (3, 6, 3, 6)), _mask((9, 9), (1, 8, 1, 8))
    distances_inner, distances_outer = boundary_distances(gt, pred)
    np.testing.assert_allclose(distances_inner, np.full(8, 2.0))
    expected_outer = sorted([math.sqrt(8)] * 4 + [math.sqrt(5)] * 8 + [2.0] * 12)
    np.testing.assert_allclose(np.sort(distances_outer), expected_outer, rtol=0, atol=1e-12)
    hd, hd95 = hausdorff_distances(gt, pred)
    assert hd == pytest.approx(math.sqrt(8)) and hd95 == pytest.approx(math.sqrt(8))


def test_identical_masks_and_symmetry() -> None:
    gt, pred = _random_blob_masks(3, (40, 50), sigma=3)
    assert hausdorff_distances(gt, gt) == (0.0, 0.0)
    assert hausdorff_distances(gt, pred) == hausdorff_distances(pred, gt)


def test_empty_mask_raises() -> None:
    full, empty = _mask((4, 4), (1, 1)), np.zeros((4, 4), dtype=bool)
    with pytest.raises(ValueError, match="second mask is empty"):
        hausdorff_distances(full, empty)
    with pytest.raises(ValueError, match="first mask is empty"):
        hausdorff_distances(empty, full)
    with pytest.raises(ValueError, match="same shape"):
        hausdorff_distances(full, np.ones((4, 5), bool))


def test_boundary_is_mask_xor_4_connected_erosion() -> None:
    structure = ndimage.generate_binary_structure(2, 1)
    for seed in range(6):
        mask, _ = _random_blob_masks(seed, (31, 47), sigma=seed % 3)
        expected = mask ^ ndimage.binary_erosion(mask, structure=structure)
        np.testing.assert_array_equal(mask_boundary(mask), expected)
    np.testing.assert_array_equal(mask_boundary(np.ones((3, 3), bool)), ~_mask((3, 3), (1, 1)))


@pytest.mark.parametrize("spacing", [None, (1.0, 1.0), (0.7, 1.3), 2.5])
def test_boundary_distances_equal_the_full_image_distance_transform(spacing) -> None:
    """The cropped transform equals scipy's EDT(~boundary_b)[boundary_a] on the uncropped image."""
    for seed, sigma in [(0, 4.0), (1, 0.0), (2, 1.5)]:
        gt, pred = _random_blob_masks(seed, (48, 64), sigma)
        sampling = None if spacing is None else np.broadcast_to(spacing, (2,))
        border_gt, border_pred = mask_boundary(gt), mask_boundary(pred)
        reference_gt = ndimage.distance_transform_edt(~border_pred, sampling=sampling)[border_gt]
        reference_pred = ndimage.distance_transform_edt(~border_gt, sampling=sampling)[border_pred]
        distances_gt, distances_pred = boundary_distances(gt, pred, spacing)
        np.testing.assert_array_equal(distances_gt, reference_gt)
        np.testing.assert_array_equal(distances_pred, reference_pred)


def test_opencv_distances_round_back_to_scipys_float64_values_on_random_masks() -> None:
    """OpenCV's float32 transform, squared and rounded, gives scipy's exact distances (< 2048 px)."""
    rng = np.random.default_rng(7)
    for _ in range(60):
        height, width = rng.integers(2, 160, size=2)
        points_a = rng.random((height, width)) < 10 ** rng.uniform(-3.5, -0.5)
        points_b = rng.random((height, width)) < 10 ** rng.uniform(-3.5, -0.5)
        points_a[0, 0] = points_b[-1, -1] = True  # the crop is the whole array
        reference = ndimage.distance_transform_edt(~mask_boundary(points_b))[mask_boundary(points_a)]
        distances_a, _ = boundary_distances(points_a, points_b)
        np.testing.assert_array_equal(distances_a, reference)


def test_distances_beyond_2048_pixels_stay_exact(medpy_binary) -> None:
    """Corner-to-corner boundaries 2290 px apart on a 2048x1024 frame: float32 alone would be off."""
    gt = np.zeros((1024, 2048), dtype=bool)
    pred = np.zeros_like(gt)
    gt[:2, :2] = True
    pred[-2:, -2:] = True
    hd, _ = hausdorff_distances(gt, pred)
    assert hd == math.sqrt(1022**2 + 2046**2)
    assert hd == medpy_binary.hd(pred, gt)


def test_bad_spacing_is_rejected() -> None:
    with pytest.raises(ValueError, match="spacing"):
        hausdorff_distances(np.ones((2, 2), bool), np.ones((2, 2), bool), spacing=(1.0, 0.0))


# --------------------------------------------------------------------------------------------------
# Per-image, per-class Hausdorff accumulation
# --------------------------------------------------------------------------------------------------


def test_accumulator_counts_pairs_and_one_empty_cases() -> None:
    gt = np.zeros((8, 8), dtype=np.uint8)
    pred = np.zeros((8, 8), dtype=np.uint8)
    gt[2, 3] = 1  # class 1 in both: single pixels 5 apart
    pred[5, 7] = 1
    gt[0, 0] = 2  # class 2 only in the ground truth (missed)
    pred[7, 0] = 3  # class 3 only in the prediction (spurious)
    # class 0 (background) fills both; class 4 absent from both
    accumulator = HausdorffAccumulator(num_classes=5)
    accumulator.add(gt, pred)
    result = accumulator.result(["bg", "a", "b", "c", "d"])
    assert result.per_class_hd_pairs == {"bg": 1, "a": 1, "b": 0, "c": 0, "d": 0}
    assert result.per_class_hd_one_empty == {"bg": 0, "a": 0, "b": 1, "c": 1, "d": 0}
    assert result.hd_pairs == 2 and result.hd_one_empty == 2
    assert result.per_class_hd["a"] == 5.0 and result.per_class_hd95["a"] == 5.0
    assert result.per_class_hd["b"] is None and result.per_class_hd["d"] is None
    background_hd, background_hd95 = hausdorff_distances(gt == 0, pred == 0)
    assert result.per_class_hd["bg"] == pytest.approx(background_hd)
    assert result.hd == pytest.approx((background_hd + 5.0) / 2)
    assert result.hd95 == pytest.approx((background_hd95 + 5.0) / 2)
    json.dumps(result.to_dict(), allow_nan=False)


def test_accumulator_excludes_ignored_pixels_from_both_masks() -> None:
    gt = np.zeros((4, 6), dtype=np.uint8)
    gt[0, 0] = 1
    gt[0, 4] = 255
    gt[3, 5] = 255
    pred = np.zeros((4, 6), dtype=np.uint8)
    pred[0, 0] = 1
    pred[0, 4] = 1  # on an ignored pixel: not part of the predicted mask
    pred[3, 5] = 2  # class 2 predicted only on an ignored pixel: both masks empty, nothing counted
    accumulator = HausdorffAccumulator(num_classes=3)
    accumulator.add(gt, pred)
    result = accumulator.result(["bg", "a", "b"])
    assert result.per_class_hd["a"] == 0.0
    assert result.per_class_hd_pairs["b"] == 0 and result.per_class_hd_one_empty["b"] == 0
    background_mask = (gt == 0)
    assert result.per_class_hd["bg"] == pytest.approx(
        hausdorff_distances(background_mask, (pred == 0) & (gt != 255))[0]
    )


def test_accumulator_means_over_images_and_merge() -> None:
    names = ["bg", "a"]
    image_5 = (_mask((8, 10), (2, 3)).astype(np.uint8), _mask((8, 10), (5, 7)).astype(np.uint8))
    image_3 = (_mask((10, 12), (2, 6, 2, 6)).astype(np.uint8), _mask((10, 12), (2, 6, 5, 9)).astype(np.uint8))
    sequential = HausdorffAccumulator(2)
    sequential.add(*image_5)
    sequential.add(*image_3)
    first, second = HausdorffAccumulator(2), HausdorffAccumulator(2)
    first.add(*image_5)
    second.add(*image_3)
    merged = first.merge(second).result(names)
    assert merged == sequential.result(names)
    assert merged.per_class_hd["a"] == 4.0 and merged.per_class_hd_pairs["a"] == 2
    with pytest.raises(ValueError, match="spacing"):
        first.merge(HausdorffAccumulator(2, spacing=0.5))


# --------------------------------------------------------------------------------------------------
# Agreement with the reference implementations
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spacing", [None, (0.8, 1.7)])
@pytest.mark.parametrize(
    ("seed", "shape", "sigma"),
    [(0, (64, 96), 4.0), (1, (96, 64), 2.0), (2, (50, 70), 0.0), (3, (128, 128), 8.0), (4, (33, 17), 1.0)],
)
def test_hausdorff_and_dice_agree_with_medpy(medpy_binary, seed, shape, sigma, spacing) -> None:
    gt, pred = _random_blob_masks(seed, shape, sigma)
    hd, hd95 = hausdorff_distances(gt, pred, spacing=spacing)
    assert hd == pytest.approx(medpy_binary.hd(pred, gt, voxelspacing=spacing), abs=1e-6)
    assert hd95 == pytest.approx(medpy_binary.hd95(pred, gt, voxelspacing=spacing), abs=1e-6)
    dice = per_class_dice(confusion_matrix(gt.astype(np.uint8), pred.astype(np.uint8), 2, ignore_label=None))[1]
    assert dice == pytest.approx(medpy_binary.dc(pred, gt), abs=1e-6)


def test_hausdorff_on_real_cityscapes_labels_agrees_with_medpy(shared_data: pathlib.Path, medpy_binary) -> None:
    """Per-class HD/HD95 on real label boundaries (labelIds vs a shifted copy), ignore pixels removed."""
    label_ids = np.array(Image.open(shared_data / CITYSCAPES_GT_LABEL_IDS))
    gt = np.where(label_ids < 7, 255, label_ids).astype(np.uint8)  # ids 0-6 (void) as the ignore label
    pred = np.roll(np.where(gt == 255, 7, gt), shift=(2, -3), axis=(0, 1))
    accumulator = HausdorffAccumulator(num_classes=34)
    accumulator.add(gt, pred)
    result = accumulator.result([str(class_id) for class_id in range(34)])
    valid = gt != 255
    checked = 0
    for class_id in range(7, 34):
        gt_mask, pred_mask = gt == class_id, (pred == class_id) & valid
        if gt_mask.any() and pred_mask.any():
            assert result.per_class_hd[str(class_id)] == pytest.approx(medpy_binary.hd(pred_mask, gt_mask), abs=1e-6)
            assert result.per_class_hd95[str(class_id)] == pytest.approx(
                medpy_binary.hd95(pred_mask, gt_mask), abs=1e-6
            )
            checked += 1
    assert checked == result.hd_pairs >= 8
