"""Class-id maps: the integer images (one class id per pixel) that every metric compares, and their validation.

:func:`validate_pair` checks a ground-truth / prediction pair once for the confusion matrix
(:mod:`components.core.metrics`) and the Hausdorff distances (:mod:`components.core.hausdorff`), so
both report a bad id with the same :class:`InvalidClassMapError`. Framework-free: numpy only.
"""

from __future__ import annotations

import numpy as np


def check_num_classes(num_classes: int) -> int:
    """Returns ``num_classes`` as an ``int``; raises ValueError unless it is a positive integer."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


class InvalidClassMapError(ValueError):
    """A class-id map holding ids outside the allowed range.

    Attributes:
        side: ``"gt"`` or ``"pred"``: which map of the pair holds them.
    """

    def __init__(self, side: str, message: str):
        super().__init__(message)
        self.side = side

    def __reduce__(self):
        return InvalidClassMapError, (self.side, str(self))


def _check_class_map(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be an integer class-id map, got dtype {array.dtype}")
    return array


def _invalid_ids_message(values: np.ndarray, limit: int = 10) -> str:
    unique = np.unique(values)
    shown = ", ".join(str(int(value)) for value in unique[:limit])
    more = f" and {unique.size - limit} more" if unique.size > limit else ""
    return f"[{shown}]{more}"


def validate_pair(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_label: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Checks a (gt, pred) pair and returns them with the mask of evaluated pixels.

    Returns:
        ``(gt, pred, valid)`` where ``valid`` is the boolean mask of pixels whose ground truth is not
        the ignore label, or ``None`` when every pixel is evaluated.

    Raises:
        TypeError: when either map is not an integer array.
        ValueError: on a shape mismatch.
        InvalidClassMapError: a ground-truth id outside ``[0, num_classes)`` and not the ignore label,
            or a predicted id outside ``[0, num_classes)`` (on any pixel).
    """
    gt = _check_class_map(gt, "gt")
    pred = _check_class_map(pred, "pred")
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred must have the same shape, got {gt.shape} and {pred.shape}")

    ignored = (gt == ignore_label) if ignore_label is not None else None
    if ignored is not None and not ignored.any():
        ignored = None

    bad_gt = (gt < 0) | (gt >= num_classes)
    if ignored is not None:
        bad_gt &= ~ignored
    if bad_gt.any():
        allowed = f"[0, {num_classes})" + (f" or the ignore label {ignore_label}" if ignore_label is not None else "")
        raise InvalidClassMapError("gt", f"gt holds ids outside {allowed}: {_invalid_ids_message(gt[bad_gt])}")

    bad_pred = (pred < 0) | (pred >= num_classes)
    if bad_pred.any():
        raise InvalidClassMapError(
            "pred", f"pred holds ids outside [0, {num_classes}): {_invalid_ids_message(pred[bad_pred])}")
    valid = None if ignored is None else ~ignored
    return gt, pred, valid
