"""Framework-free boundary (Hausdorff) distances between segmentation masks: HD and HD95.

Works on 2-D numpy masks and class-id maps and imports only numpy, scipy and OpenCV (for its exact
distance transform). The convention is the medical-imaging one of ``medpy.metric.binary.hd`` /
``hd95``: boundaries from a 4-connected erosion, nearest-boundary Euclidean distances read from a
distance transform, HD95 as the 95th percentile of both directions pooled; the results agree with
medpy exactly.

Main entry points:
    :func:`mask_boundary`, :func:`boundary_distances`, :func:`hausdorff_distances` (one pair of
    binary masks) and :class:`HausdorffAccumulator` (per-image, per-class distances over an
    evaluation set, which :class:`~components.core.metrics.SegmentationEvaluator` feeds).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from scipy import ndimage

from components.core.class_maps import check_num_classes, validate_pair
from components.core.evaluation_result import HausdorffScores
from components.core.label_maps import IGNORE_LABEL

_OPENCV_EXACT_SQUARED_DISTANCE_LIMIT = 2**22
"""Squared distances (px^2) below which OpenCV's float32 distance transform rounds back exactly.

float32 holds sqrt(n) to 24 bits; below 2048 px two consecutive integers n never share a float32
root, so rounding the square recovers n (tested against scipy's float64 transform on random masks)."""


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a binary mask: ``mask XOR erosion(mask)``.

    The erosion uses the 4-connected cross ``scipy.ndimage.generate_binary_structure(2, 1)`` with
    pixels outside the image counted as background, exactly as medpy does; the result is identical
    to ``mask ^ scipy.ndimage.binary_erosion(mask, structure)`` but computed with array slicing,
    about 25 times faster on 2048x1024 masks.

    Args:
        mask: 2-D boolean mask.

    Returns:
        Boolean array of the same shape, True on mask pixels that have a 4-neighbour outside the mask
        (or lie on the image border).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    interior = mask.copy()
    interior[1:, :] &= mask[:-1, :]
    interior[:-1, :] &= mask[1:, :]
    interior[:, 1:] &= mask[:, :-1]
    interior[:, :-1] &= mask[:, 1:]
    interior[0, :] = False
    interior[-1, :] = False
    interior[:, 0] = False
    interior[:, -1] = False
    return mask & ~interior


def _normalise_spacing(spacing: float | Sequence[float] | None) -> np.ndarray | None:
    if spacing is None:
        return None
    values = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (2,)).copy()
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"spacing must be positive and finite, got {spacing!r}")
    return values


def _as_binary_mask(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a 2-D mask, got shape {mask.shape}")
    return mask if mask.dtype == np.bool_ else mask != 0


def _union_bounding_box(mask_a: np.ndarray, mask_b: np.ndarray) -> tuple[slice, slice]:
    rows = np.flatnonzero(mask_a.any(axis=1) | mask_b.any(axis=1))
    cols = np.flatnonzero(mask_a.any(axis=0) | mask_b.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _pixel_coordinates(mask: np.ndarray) -> np.ndarray:
    """(row, column) of the True pixels, row-major order, as an ``(n, 2)`` int64 array."""
    flat_indices = np.flatnonzero(mask)
    rows, cols = np.divmod(flat_indices, mask.shape[1])
    return np.column_stack((rows, cols))


def _distance_transform_at(points: np.ndarray, target_boundary: np.ndarray, spacing: np.ndarray | None) -> np.ndarray:
    """Euclidean distance transform of ``~target_boundary`` read at ``points`` (float64).

    With unit pixels this is OpenCV's exact transform (``cv2.DIST_L2`` with ``cv2.DIST_MASK_PRECISE``,
    Felzenszwalb and Huttenlocher's algorithm), which returns float32 distances: every squared
    distance between pixel centres is an integer, so ``sqrt(rint(d * d))`` restores the float64
    value scipy and medpy compute, as long as it is below :data:`_OPENCV_EXACT_SQUARED_DISTANCE_LIMIT`.
    Beyond that (boundaries over 2048 px apart), and for non-unit spacing, scipy's transform is used.
    """
    if spacing is None:
        distances = cv2.distanceTransform((~target_boundary).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        sampled = distances[points[:, 0], points[:, 1]].astype(np.float64)
        squared = np.rint(np.multiply(sampled, sampled, out=sampled), out=sampled)
        if squared.max() < _OPENCV_EXACT_SQUARED_DISTANCE_LIMIT:
            return np.sqrt(squared, out=squared)
    distances = ndimage.distance_transform_edt(~target_boundary, sampling=spacing)
    return distances[points[:, 0], points[:, 1]]


def boundary_distances(
    mask_a: np.ndarray,
    mask_b: np.ndarray,
    spacing: float | Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distances from each boundary pixel of one mask to the nearest boundary pixel of the other.

    ``d_ab = { min_{q in ∂B} ||p - q|| : p in ∂A }`` and ``d_ba`` symmetrically, where ``∂X`` is
    :func:`mask_boundary` of ``X`` and ``||.||`` the Euclidean norm with per-axis ``spacing``. As in
    medpy, they are read from the Euclidean distance transform of ``~∂B`` at ``∂A`` (and of ``~∂A``
    at ``∂B``), in row-major order, with the same float64 values. Only the bounding box of both masks
    is transformed, and boundary pixels shared by both masks (distance 0) are not looked up.

    Args:
        mask_a: 2-D mask (non-zero = object).
        mask_b: 2-D mask of the same shape.
        spacing: Pixel size along (rows, columns), or one number for both; ``None`` means 1.

    Returns:
        ``(d_ab, d_ba)``, two ``float64`` arrays (lengths = boundary pixel counts of A and B).

    Raises:
        ValueError: when a mask is empty, not 2-D, the shapes differ, or the spacing is invalid.
    """
    mask_a = _as_binary_mask(mask_a, "mask_a")
    mask_b = _as_binary_mask(mask_b, "mask_b")
    if mask_a.shape != mask_b.shape:
        raise ValueError(f"masks must have the same shape, got {mask_a.shape} and {mask_b.shape}")
    spacing = _normalise_spacing(spacing)
    for name, mask in (("first", mask_a), ("second", mask_b)):
        if not mask.any():
            raise ValueError(f"the {name} mask is empty: boundary distances are undefined")

    # Outside the bounding box both masks are background, so erosion (background border) and the
    # distance transform give the same results on the crop as on the whole image.
    window = _union_bounding_box(mask_a, mask_b)
    boundary_a = mask_boundary(mask_a[window])
    boundary_b = mask_boundary(mask_b[window])
    return (
        _distances_to_boundary(_pixel_coordinates(boundary_a), boundary_b, spacing),
        _distances_to_boundary(_pixel_coordinates(boundary_b), boundary_a, spacing),
    )


def _distances_to_boundary(
    query_points: np.ndarray, target_boundary: np.ndarray, spacing: np.ndarray | None
) -> np.ndarray:
    """Distance from each query point to the nearest pixel of ``target_boundary``.

    Query points lying on the target boundary are at distance exactly 0 and skip the transform (for
    a perfect prediction no transform is computed at all).
    """
    distances = np.zeros(len(query_points), dtype=np.float64)
    off_target = ~target_boundary[query_points[:, 0], query_points[:, 1]]
    if off_target.any():
        distances[off_target] = _distance_transform_at(query_points[off_target], target_boundary, spacing)
    return distances


def hausdorff_distances(
    gt_mask: np.ndarray,
    pred_mask: np.ndarray,
    spacing: float | Sequence[float] | None = None,
) -> tuple[float, float]:
    """Hausdorff distance and its 95th percentile between the boundaries of two binary masks.

    With ``d_gp`` / ``d_pg`` the nearest-boundary distances of :func:`boundary_distances`:
        * ``HD = max(max(d_gp), max(d_pg))``
        * ``HD95 = percentile_95(concat(d_gp, d_pg))`` (numpy's default linear interpolation)

    This is the convention of ``medpy.metric.binary.hd`` and ``hd95`` (connectivity 1), whose
    results it reproduces exactly; the function is symmetric in its arguments.

    Args:
        gt_mask: 2-D ground-truth mask (non-zero = object).
        pred_mask: 2-D predicted mask of the same shape.
        spacing: Pixel size along (rows, columns), or one number for both; ``None`` means 1.

    Returns:
        ``(hd, hd95)`` as Python floats, in units of ``spacing`` (pixels by default).

    Raises:
        ValueError: when either mask is empty (the distance is undefined), or on bad shapes/spacing.
    """
    distances_gt_to_pred, distances_pred_to_gt = boundary_distances(gt_mask, pred_mask, spacing)
    hd = max(distances_gt_to_pred.max(), distances_pred_to_gt.max())
    hd95 = np.percentile(np.concatenate((distances_gt_to_pred, distances_pred_to_gt)), 95)
    return float(hd), float(hd95)


class HausdorffAccumulator:
    """Per-image, per-class Hausdorff distances accumulated over an evaluation set.

    For each image and each class ``c``: ``G = (gt == c)`` and ``P = (pred == c)`` with pixels whose
    ground truth is the ignore label removed from both. Then
        * both non-empty: ``hausdorff_distances(G, P)`` is recorded (one *pair*);
        * exactly one empty: counted in ``one_empty[c]`` (the distance is undefined; never dropped
          silently and never replaced by an arbitrary number);
        * both empty: nothing.
    Reported means are over (image, class) pairs with both masks non-empty.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_label: int | None = IGNORE_LABEL,
        spacing: float | Sequence[float] | None = None,
    ):
        """Creates an empty accumulator.

        Args:
            num_classes: Number of evaluated classes.
            ignore_label: Ground-truth id of pixels to exclude, or ``None``.
            spacing: Pixel size along (rows, columns); ``None`` means distances in pixels.
        """
        self.num_classes = check_num_classes(num_classes)
        self.ignore_label = ignore_label
        self.spacing = _normalise_spacing(spacing)
        self.hd_sum = np.zeros(self.num_classes, dtype=np.float64)
        self.hd95_sum = np.zeros(self.num_classes, dtype=np.float64)
        self.pairs = np.zeros(self.num_classes, dtype=np.int64)
        self.one_empty = np.zeros(self.num_classes, dtype=np.int64)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Adds one image's ground-truth and predicted class-id maps (2-D, same shape).

        Raises:
            TypeError, ValueError: as :func:`~components.core.class_maps.validate_pair`, or when the
                maps are not 2-D.
        """
        gt, pred, valid = validate_pair(gt, pred, self.num_classes, self.ignore_label)
        gt_ids, pred_ids = (gt, pred) if valid is None else (gt[valid], pred[valid])
        self.add_validated(gt, pred, valid, self._pixels_per_class(gt_ids), self._pixels_per_class(pred_ids))

    def _pixels_per_class(self, ids: np.ndarray) -> np.ndarray:
        return np.bincount(ids.ravel().astype(np.intp), minlength=self.num_classes)

    def add_validated(
        self, gt: np.ndarray, pred: np.ndarray, valid: np.ndarray | None, gt_pixels: np.ndarray,
        pred_pixels: np.ndarray,
    ) -> None:
        """Adds one image already checked by :func:`~components.core.class_maps.validate_pair`.

        For callers that validated and counted the pair anyway (:class:`SegmentationEvaluator
        <components.core.metrics.SegmentationEvaluator>` reads the counts off its per-image confusion
        matrix).

        Args:
            gt, pred, valid: As returned by :func:`~components.core.class_maps.validate_pair`.
            gt_pixels: Evaluated ground-truth pixels per class id (confusion-matrix row sums).
            pred_pixels: Predicted pixels per class id on evaluated pixels only (column sums).

        Raises:
            ValueError: when the maps are not 2-D.
        """
        if gt.ndim != 2:
            raise ValueError(f"Hausdorff distances need 2-D class-id maps, got shape {gt.shape}")
        for class_id in np.flatnonzero((gt_pixels > 0) | (pred_pixels > 0)):
            if gt_pixels[class_id] == 0 or pred_pixels[class_id] == 0:
                self.one_empty[class_id] += 1
                continue
            gt_mask = gt == class_id
            pred_mask = pred == class_id
            if valid is not None:
                pred_mask &= valid
            hd, hd95 = hausdorff_distances(gt_mask, pred_mask, self.spacing)
            self.hd_sum[class_id] += hd
            self.hd95_sum[class_id] += hd95
            self.pairs[class_id] += 1

    def merge(self, other: HausdorffAccumulator) -> HausdorffAccumulator:
        """Adds another accumulator's sums and counts into this one and returns ``self``.

        Raises:
            ValueError: when the accumulators differ in classes, ignore label or spacing.
        """
        same_spacing = (self.spacing is None and other.spacing is None) or (
            self.spacing is not None and other.spacing is not None and np.array_equal(self.spacing, other.spacing)
        )
        if other.num_classes != self.num_classes or other.ignore_label != self.ignore_label or not same_spacing:
            raise ValueError("cannot merge Hausdorff accumulators with different classes, ignore label or spacing")
        self.hd_sum += other.hd_sum
        self.hd95_sum += other.hd95_sum
        self.pairs += other.pairs
        self.one_empty += other.one_empty
        return self

    def result(self, class_names: Sequence[str]) -> HausdorffScores:
        """The accumulated distances.

        Args:
            class_names: One name per class id.

        Returns:
            :class:`~components.core.evaluation_result.HausdorffScores`: ``hd`` and ``hd95`` (means over
            all (image, class) pairs with both masks non-empty, ``None`` without any pair),
            ``per_class_hd`` / ``per_class_hd95`` ({name: mean or None}), ``hd_pairs`` and
            ``per_class_hd_pairs`` (pair counts), ``hd_one_empty`` and ``per_class_hd_one_empty``
            (counts of (image, class) with exactly one mask empty).

        Raises:
            ValueError: when ``class_names`` has the wrong length.
        """
        class_names = [str(name) for name in class_names]
        if len(class_names) != self.num_classes:
            raise ValueError(f"got {len(class_names)} class names for {self.num_classes} classes")
        total_pairs = int(self.pairs.sum())

        def mean(total: float, count: int) -> float | None:
            return float(total / count) if count > 0 else None

        return HausdorffScores(
            hd=mean(self.hd_sum.sum(), total_pairs),
            hd95=mean(self.hd95_sum.sum(), total_pairs),
            per_class_hd={n: mean(s, c) for n, s, c in zip(class_names, self.hd_sum, self.pairs)},
            per_class_hd95={n: mean(s, c) for n, s, c in zip(class_names, self.hd95_sum, self.pairs)},
            hd_pairs=total_pairs,
            per_class_hd_pairs={n: int(c) for n, c in zip(class_names, self.pairs)},
            hd_one_empty=int(self.one_empty.sum()),
            per_class_hd_one_empty={n: int(c) for n, c in zip(class_names, self.one_empty)},
        )
