"""Framework-free semantic-segmentation metrics: confusion matrix, IoU, Dice, pixel accuracy.

Everything here works on numpy class-id maps (2-D integer arrays, rows x columns, checked by
:mod:`components.core.class_maps`), so the same code serves the TFMA adapters, the benchmarks,
``segpipe score`` and the unit tests. The boundary (Hausdorff) distances live in
:mod:`components.core.hausdorff`; :class:`SegmentationEvaluator` runs both over an evaluation set.

Conventions:
    * Ground truth ``gt`` and prediction ``pred`` are class-id maps of equal shape. Valid ids are
      ``0 .. num_classes - 1``; ``gt`` may also hold the ignore label (by default
      :data:`~components.core.label_maps.IGNORE_LABEL`, 255; adapters holding a label map pass its
      ``ignore_label``). Pixels whose ground truth is the ignore label are excluded from every metric.
    * Dataset-level scores are computed from ONE confusion matrix accumulated over the whole evaluation
      set (never an average of per-image or per-batch scores).
    * A class whose score is undefined (absent from both ground truth and prediction) is reported as
      ``None`` and left out of the means; it is never counted as 0 or 1.

Main entry points:
    :func:`confusion_matrix`, :class:`ConfusionMatrix`, :func:`scores_from_confusion`,
    :class:`SegmentationEvaluator`, :func:`resize_nearest`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from components.core.class_maps import check_num_classes, validate_pair
from components.core.evaluation_result import EvaluationResult
from components.core.hausdorff import HausdorffAccumulator
from components.core.label_maps import IGNORE_LABEL


# --------------------------------------------------------------------------------------------------
# Confusion matrix and the scores derived from it
# --------------------------------------------------------------------------------------------------


def _confusion_from_validated(
    gt: np.ndarray, pred: np.ndarray, valid: np.ndarray | None, num_classes: int
) -> np.ndarray:
    if valid is None:
        gt_ids, pred_ids = gt.ravel(), pred.ravel()
    else:
        gt_ids, pred_ids = gt[valid], pred[valid]
    encoded = gt_ids.astype(np.intp) * num_classes + pred_ids.astype(np.intp)
    counts = np.bincount(encoded, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def confusion_matrix(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_label: int | None = IGNORE_LABEL
) -> np.ndarray:
    """Counts pixels per (ground-truth class, predicted class) pair.

    ``M[i, j] = #{pixels p : gt[p] = i, pred[p] = j, gt[p] != ignore_label}``: rows are ground truth,
    columns are prediction. Computed in one ``np.bincount`` over ``gt * num_classes + pred``.

    Args:
        gt: Integer ground-truth class-id map; ids in ``[0, num_classes)`` or ``ignore_label``.
        pred: Integer predicted class-id map of the same shape; ids in ``[0, num_classes)``.
        num_classes: Number of evaluated classes.
        ignore_label: Ground-truth id of pixels to exclude, or ``None`` to evaluate every pixel.

    Returns:
        ``int64`` array of shape ``(num_classes, num_classes)``.

    Raises:
        TypeError: when ``gt`` or ``pred`` is not an integer array.
        ValueError: on a shape mismatch or an id out of range; the message names the bad ids.
    """
    num_classes = check_num_classes(num_classes)
    gt, pred, valid = validate_pair(gt, pred, num_classes, ignore_label)
    return _confusion_from_validated(gt, pred, valid, num_classes)


class ConfusionMatrix:
    """Confusion matrix accumulated over a whole evaluation set (see :func:`confusion_matrix`).

    Example:
        >>> accumulator = ConfusionMatrix(num_classes=21)
        >>> for gt, pred in pairs:
        ...     accumulator.add(gt, pred)
        >>> scores = accumulator.scores(class_names)
    """

    def __init__(self, num_classes: int, ignore_label: int | None = IGNORE_LABEL):
        """Creates an empty accumulator.

        Args:
            num_classes: Number of evaluated classes.
            ignore_label: Ground-truth id of pixels to exclude, or ``None``.
        """
        self.num_classes = check_num_classes(num_classes)
        self.ignore_label = ignore_label
        self._matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    @property
    def matrix(self) -> np.ndarray:
        """A copy of the accumulated ``int64`` matrix (rows ground truth, columns prediction)."""
        return self._matrix.copy()

    def add(self, gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Adds one image (or batch) of class-id maps.

        Args:
            gt: Ground-truth class-id map.
            pred: Predicted class-id map of the same shape.

        Returns:
            The confusion matrix of this pair alone.

        Raises:
            TypeError, ValueError: as :func:`confusion_matrix`.
        """
        image_matrix = confusion_matrix(gt, pred, self.num_classes, self.ignore_label)
        self._matrix += image_matrix
        return image_matrix

    def add_matrix(self, matrix: np.ndarray) -> None:
        """Adds an already computed confusion matrix of the same classes."""
        matrix = np.asarray(matrix)
        if matrix.shape != self._matrix.shape:
            raise ValueError(f"expected a matrix of shape {self._matrix.shape}, got {matrix.shape}")
        self._matrix += matrix.astype(np.int64)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Adds the counts of another accumulator (e.g. from another worker) into this one.

        Returns:
            ``self``, for chaining.

        Raises:
            ValueError: when the two accumulators use different classes or ignore labels.
        """
        if other.num_classes != self.num_classes or other.ignore_label != self.ignore_label:
            raise ValueError("cannot merge confusion matrices with different num_classes or ignore_label")
        self._matrix += other._matrix
        return self

    def scores(self, class_names: Sequence[str]) -> EvaluationResult:
        """Returns :func:`scores_from_confusion` of the accumulated matrix."""
        return scores_from_confusion(self._matrix, class_names)


def _true_false_counts(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {matrix.shape}")
    true_positives = np.diag(matrix)
    false_positives = matrix.sum(axis=0) - true_positives
    false_negatives = matrix.sum(axis=1) - true_positives
    return true_positives, false_positives, false_negatives


def per_class_iou(matrix: np.ndarray) -> np.ndarray:
    """Intersection over union per class: ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``.

    With ``M`` the confusion matrix: ``TP_c = M[c, c]``, ``FP_c = sum_i M[i, c] - TP_c`` (column),
    ``FN_c = sum_j M[c, j] - TP_c`` (row).

    Args:
        matrix: Square confusion matrix, rows ground truth, columns prediction.

    Returns:
        ``float64`` array; ``NaN`` for a class absent from both ground truth and prediction.
    """
    true_positives, false_positives, false_negatives = _true_false_counts(matrix)
    denominator = true_positives + false_positives + false_negatives
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, true_positives / denominator, np.nan)


def per_class_dice(matrix: np.ndarray) -> np.ndarray:
    """Dice coefficient (F1) per class: ``Dice_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``.

    Equivalently ``2 |G_c ∩ P_c| / (|G_c| + |P_c|)`` for the ground-truth and predicted pixel sets.

    Args:
        matrix: Square confusion matrix, rows ground truth, columns prediction.

    Returns:
        ``float64`` array; ``NaN`` for a class absent from both ground truth and prediction.
    """
    true_positives, false_positives, false_negatives = _true_false_counts(matrix)
    denominator = 2 * true_positives + false_positives + false_negatives
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * true_positives / denominator, np.nan)


def pixel_accuracy(matrix: np.ndarray) -> float:
    """Fraction of evaluated pixels predicted correctly: ``trace(M) / sum(M)``.

    Returns:
        The accuracy, or ``NaN`` when the matrix counts no pixel.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    total = int(matrix.sum())
    return float(np.trace(matrix)) / total if total > 0 else math.nan


def _nan_mean(values: np.ndarray) -> float | None:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else None


def _optional_float(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def scores_from_confusion(matrix: np.ndarray, class_names: Sequence[str]) -> EvaluationResult:
    """Dataset-level scores from an accumulated confusion matrix.

    Formulas (``M`` rows ground truth, columns prediction; see :func:`per_class_iou`):
        * ``per_class_iou[c] = TP_c / (TP_c + FP_c + FN_c)``, ``None`` when the denominator is 0
          (class absent from both ground truth and prediction).
        * ``miou = mean of per_class_iou over classes with a non-zero denominator`` (a class only
          predicted, or only in the ground truth, counts with IoU 0; an absent class is left out).
        * ``per_class_dice[c] = 2 TP_c / (2 TP_c + FP_c + FN_c)``; ``mean_dice`` like ``miou``.
        * ``pixel_accuracy = trace(M) / sum(M)``.

    Args:
        matrix: Square confusion matrix, e.g. :attr:`ConfusionMatrix.matrix`.
        class_names: One name per row of ``matrix``, in class-id order.

    Returns:
        An :class:`~components.core.evaluation_result.EvaluationResult` without Hausdorff distances:
        ``miou``, ``per_class_iou`` ({name: float or None}), ``pixel_accuracy``, ``mean_dice``,
        ``per_class_dice``, ``evaluated_pixels``, ``classes_in_mean`` (how many classes the means
        average), ``class_names`` and the ``confusion_matrix``. Means and accuracy are ``None`` when
        undefined (no evaluated pixel).

    Raises:
        ValueError: when the matrix is not square or ``class_names`` has the wrong length.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    iou = per_class_iou(matrix)
    dice = per_class_dice(matrix)
    class_names = [str(name) for name in class_names]
    if len(class_names) != matrix.shape[0]:
        raise ValueError(f"got {len(class_names)} class names for a {matrix.shape[0]}-class confusion matrix")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class names must be unique, got {class_names}")
    return EvaluationResult(
        miou=_nan_mean(iou),
        per_class_iou={name: _optional_float(value) for name, value in zip(class_names, iou)},
        pixel_accuracy=_optional_float(pixel_accuracy(matrix)),
        mean_dice=_nan_mean(dice),
        per_class_dice={name: _optional_float(value) for name, value in zip(class_names, dice)},
        evaluated_pixels=int(matrix.sum()),
        classes_in_mean=int(np.count_nonzero(~np.isnan(iou))),
        class_names=class_names,
        confusion_matrix=matrix,
    )


# --------------------------------------------------------------------------------------------------
# Both accumulators over an evaluation set
# --------------------------------------------------------------------------------------------------


class VolumeErrorAccumulator:
    """Relative area ("volume") error per class: for each image and each class c in its ground truth,
    ``|A_pred(c) - A_gt(c)| / A_gt(c)`` with the areas counted over the image's evaluated pixels (the
    ignore label excluded), i.e. the column and row sums of the image's confusion matrix; averaged per
    class over those images. Mergeable, like the confusion matrix."""

    def __init__(self, num_classes: int):
        self.num_classes = check_num_classes(num_classes)
        self._sums = np.zeros(self.num_classes, dtype=np.float64)
        self._images = np.zeros(self.num_classes, dtype=np.int64)

    def add_image_matrix(self, image_matrix: np.ndarray) -> None:
        """Adds one image, given its own confusion matrix (rows ground truth, columns prediction)."""
        gt_areas, pred_areas = image_matrix.sum(axis=1), image_matrix.sum(axis=0)
        present = gt_areas > 0
        self._sums[present] += np.abs(pred_areas[present] - gt_areas[present]) / gt_areas[present]
        self._images += present

    def merge(self, other: VolumeErrorAccumulator) -> VolumeErrorAccumulator:
        """Adds another accumulator's images into this one and returns ``self``."""
        if other.num_classes != self.num_classes:
            raise ValueError("cannot merge volume errors of different num_classes")
        self._sums += other._sums
        self._images += other._images
        return self

    def result(self, class_names: Sequence[str]) -> tuple[float | None, dict[str, float | None]]:
        """(mean over the classes that have one, ``{class name: mean error or None}``)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(self._images > 0, self._sums / self._images, np.nan)
        return _nan_mean(per_class), {str(name): _optional_float(value) for name, value in zip(class_names, per_class)}


class SegmentationEvaluator:
    """Dataset-level evaluation: one confusion matrix plus (optionally) per-image Hausdorff distances.

    Example:
        >>> evaluator = SegmentationEvaluator(num_classes=19)
        >>> for gt, pred in pairs:
        ...     evaluator.add(gt, resize_nearest(pred, gt.shape))
        >>> result = evaluator.result(class_names)  # result.miou, result.per_class_iou, result.hausdorff.hd95, ...
    """

    def __init__(
        self,
        num_classes: int,
        ignore_label: int | None = IGNORE_LABEL,
        compute_hausdorff: bool = True,
        spacing: float | Sequence[float] | None = None,
    ):
        """Creates an empty evaluator.

        Args:
            num_classes: Number of evaluated classes.
            ignore_label: Ground-truth id of pixels to exclude, or ``None``.
            compute_hausdorff: Whether to compute the (slower) boundary distances.
            spacing: Pixel size along (rows, columns) for the Hausdorff distances.
        """
        self.confusion = ConfusionMatrix(num_classes, ignore_label)
        self.hausdorff = HausdorffAccumulator(num_classes, ignore_label, spacing) if compute_hausdorff else None
        self.volume_error = VolumeErrorAccumulator(num_classes)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Adds one image's ground-truth and predicted class-id maps (validated once)."""
        gt, pred, valid = validate_pair(gt, pred, self.confusion.num_classes, self.confusion.ignore_label)
        image_matrix = _confusion_from_validated(gt, pred, valid, self.confusion.num_classes)
        if self.hausdorff is not None:
            self.hausdorff.add_validated(gt, pred, valid, image_matrix.sum(axis=1), image_matrix.sum(axis=0))
        self.confusion.add_matrix(image_matrix)
        self.volume_error.add_image_matrix(image_matrix)

    def merge(self, other: SegmentationEvaluator) -> SegmentationEvaluator:
        """Adds another evaluator's counts into this one and returns ``self``."""
        if (self.hausdorff is None) != (other.hausdorff is None):
            raise ValueError("cannot merge an evaluator with Hausdorff distances into one without")
        self.confusion.merge(other.confusion)
        if self.hausdorff is not None:
            self.hausdorff.merge(other.hausdorff)
        self.volume_error.merge(other.volume_error)
        return self

    def result(self, class_names: Sequence[str]) -> EvaluationResult:
        """:func:`scores_from_confusion` with :meth:`HausdorffAccumulator.result` as its ``hausdorff``
        (``None`` when the distances are not computed)."""
        mean_volume_error, per_class_volume_error = self.volume_error.result(class_names)
        scores = dataclasses.replace(self.confusion.scores(class_names), mean_volume_error=mean_volume_error,
                                     per_class_volume_error=per_class_volume_error)
        if self.hausdorff is None:
            return scores
        return dataclasses.replace(scores, hausdorff=self.hausdorff.result(class_names))


# --------------------------------------------------------------------------------------------------
# Resizing predictions back to label resolution
# --------------------------------------------------------------------------------------------------


def resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D class-id map; ids and dtype are preserved.

    Output pixel ``(i, j)`` takes input pixel ``(min(floor((i + 0.5) * H_in / H_out), H_in - 1),
    min(floor((j + 0.5) * W_in / W_out), W_in - 1))``: half-pixel centres, the convention of
    ``tf.image.resize(method="nearest")`` used in preprocessing, with which it agrees exactly on the
    sizes checked (VOC and Cityscapes shapes, up- and down-sampling). Pillow's ``NEAREST`` uses the
    same convention in fixed-point arithmetic and picks a neighbouring row or column in a few places
    when the size ratio is not an integer.

    Args:
        mask: 2-D array of class ids (any dtype).
        size: Target ``(height, width)``, e.g. ``gt.shape``.

    Returns:
        Array of shape ``size`` and the dtype of ``mask``.

    Raises:
        ValueError: when ``mask`` is not 2-D or a size is not positive.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    height, width = (int(value) for value in size)
    if height < 1 or width < 1 or mask.size == 0:
        raise ValueError(f"cannot resize a {mask.shape} mask to {(height, width)}")
    if (height, width) == mask.shape:
        return mask.copy()

    def source_indices(out_length: int, in_length: int) -> np.ndarray:
        positions = (np.arange(out_length, dtype=np.float64) + 0.5) * (in_length / out_length)
        return np.minimum(positions.astype(np.intp), in_length - 1)

    return mask[np.ix_(source_indices(height, mask.shape[0]), source_indices(width, mask.shape[1]))]


def prediction_at_image_size(prediction: np.ndarray, content_size, size: tuple[int, int]) -> np.ndarray:
    """Maps a prediction made on the model's input back onto the image, as the serving signature does
    (`components.core.preprocessing.input_indices_of_content`, the same rule in TensorFlow): the image was
    scaled to `content_size` (rows, cols) and, where that exceeds the input, cropped to its centred window
    ("fill"), else padded at the bottom and right ("fit"). The prediction is taken back to the scaled size
    (its padding dropped, its edge pixels repeated over what the crop cut away) and resized to `size` with
    `resize_nearest`.

    Args:
        prediction: 2-D class ids at the model's input size.
        content_size: (rows, cols) the image was scaled to; None for the input size itself.
        size: the image's (height, width), e.g. ``gt.shape``.
    """
    prediction = np.asarray(prediction)
    if content_size is not None:
        content = np.asarray(content_size, dtype=np.int64).reshape(-1)[:2]
        input_size = np.asarray(prediction.shape[:2], dtype=np.int64)
        offsets = np.maximum(content - input_size, 0) // 2
        rows = np.clip(np.arange(content[0]) - offsets[0], 0, input_size[0] - 1)
        cols = np.clip(np.arange(content[1]) - offsets[1], 0, input_size[1] - 1)
        prediction = prediction[np.ix_(rows, cols)]
    return resize_nearest(prediction, size)
