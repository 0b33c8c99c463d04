"""The typed result of a segmentation evaluation, and the one place its score names are spelled.

:class:`EvaluationResult` is what :meth:`SegmentationEvaluator.result
<components.core.metrics.SegmentationEvaluator.result>` returns, what the TFMA adapter flattens into
metric names (:meth:`~EvaluationResult.to_metrics`) and rebuilds from them
(:meth:`~EvaluationResult.from_metrics`), what ``segpipe score`` prints (:meth:`~EvaluationResult.to_dict`)
and what the reports render. Its boundary distances are a :class:`HausdorffScores`, or ``None`` when
they were not computed.

Names:
    * The field names are the keys of :meth:`EvaluationResult.to_dict` (the JSON of ``segpipe score``),
      the Hausdorff fields included, in field order.
    * :data:`SUMMARY_METRICS`: the dataset-level scores, under the same names in TFMA.
    * :data:`PER_CLASS_METRICS`: each per-class score's name (``iou``: TFMA metric ``iou/<class>``, report
      column) and the field holding its ``{class name: value}`` (``per_class_iou``).

A value that is undefined (a class absent from both ground truth and prediction, a mean over
nothing) or not computed is ``None``, never NaN. Framework-free: numpy only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

MIOU = "miou"
"""The headline score, mean IoU; TFMA's blessing thresholds apply to the metric of this name."""

SUMMARY_METRICS = (MIOU, "pixel_accuracy", "mean_dice", "mean_volume_error", "hd", "hd95", "hd_pairs", "hd_one_empty")
"""Dataset-level scores: field (or :class:`HausdorffScores` field), ``to_dict`` key and TFMA metric name."""

PER_CLASS_METRICS = {
    "iou": "per_class_iou",
    "dice": "per_class_dice",
    "volume_error": "per_class_volume_error",
    "hd": "per_class_hd",
    "hd95": "per_class_hd95",
    "hd_pairs": "per_class_hd_pairs",
    "hd_one_empty": "per_class_hd_one_empty",
}
"""Per-class score name (TFMA metric ``<name>/<class>``) -> the field holding ``{class name: value}``."""

COUNT_METRICS = frozenset({"hd_pairs", "hd_one_empty"})
"""Scores (summary and per class) that are counts; TFMA stores them as doubles, rebuilt as ints."""

CONFUSION_MATRIX = "confusion_matrix"
"""The confusion matrix's field, ``to_dict`` key and TFMA metric name."""

HAUSDORFF_COMPUTED = "hd_pairs"
"""The key that tells, in a flat form, whether Hausdorff distances were computed: null when not (a
count, 0 or more, when they were)."""

_HAUSDORFF_FIELD = "hausdorff"
"""The :class:`EvaluationResult` field holding the :class:`HausdorffScores`, flattened into the other forms."""

_CONTEXT = {"context": True}
"""Field metadata of what was evaluated rather than a score: left out of ``to_dict`` when None."""


def _plain(value: Any) -> Any:
    """A field value as JSON-able Python: dicts copied, tuples (class names, matrix rows) as lists."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _missing(document: Mapping[str, Any], names: Sequence[str]) -> None:
    missing = [name for name in names if name not in document]
    if missing:
        raise ValueError(f"not an evaluation result: it has no {', '.join(map(repr, missing))}")


def _copy_per_class_fields(instance: Any) -> None:
    """Replaces the per-class mappings of a frozen result by its own dict copies."""
    for field in dataclasses.fields(instance):
        if field.name in PER_CLASS_METRICS.values():
            object.__setattr__(instance, field.name, dict(getattr(instance, field.name)))


@dataclasses.dataclass(frozen=True)
class HausdorffScores:
    """Boundary distances over an evaluation set (see :class:`~components.core.hausdorff.HausdorffAccumulator`).

    Means are over the (image, class) pairs where both masks are non-empty; distances in pixels (or
    units of the evaluator's spacing).

    Attributes:
        hd: Mean Hausdorff distance over all pairs; None without any pair.
        hd95: Mean 95th-percentile Hausdorff distance over all pairs; None without any pair.
        per_class_hd: ``{class name: mean HD over that class's pairs, or None}``.
        per_class_hd95: ``{class name: mean HD95, or None}``.
        hd_pairs: How many pairs the means average.
        per_class_hd_pairs: ``{class name: pair count}``.
        hd_one_empty: How many (image, class) had exactly one of the two masks empty (distance undefined).
        per_class_hd_one_empty: ``{class name: that count}``.
    """

    hd: float | None
    hd95: float | None
    per_class_hd: dict[str, float | None]
    per_class_hd95: dict[str, float | None]
    hd_pairs: int
    per_class_hd_pairs: dict[str, int]
    hd_one_empty: int
    per_class_hd_one_empty: dict[str, int]

    def __post_init__(self):
        _copy_per_class_fields(self)

    def to_dict(self) -> dict[str, Any]:
        """The fields by name, JSON-able."""
        return {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}


def _hausdorff_not_computed(class_names: Sequence[str]) -> dict[str, Any]:
    """The :class:`HausdorffScores` fields of distances that were not computed: all null, per class too."""
    return {field.name: {name: None for name in class_names} if field.name in PER_CLASS_METRICS.values() else None
            for field in dataclasses.fields(HausdorffScores)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluationResult:
    """Dataset-level scores of one evaluation: IoU, Dice and pixel accuracy from one confusion
    matrix, the Hausdorff distances if computed, and what was evaluated.

    The per-class mappings have exactly the keys ``class_names``, in that order (checked); they are
    the result's own copies and are not to be modified.

    Attributes:
        miou: Mean IoU over the classes present in ground truth or prediction.
        per_class_iou: ``{class name: IoU, or None when absent from both}``.
        pixel_accuracy: Fraction of evaluated pixels predicted correctly.
        mean_dice: Mean Dice over the same classes as ``miou``.
        per_class_dice: ``{class name: Dice, or None}``.
        mean_volume_error: Mean of ``per_class_volume_error`` over the classes that have one; None when
            no class has one or it was not computed (a result rebuilt from a confusion matrix alone).
        per_class_volume_error: ``{class name: relative area error, or None}``: |A_pred - A_gt| / A_gt of
            the class over each image's evaluated pixels, averaged over the images where the class is in
            the ground truth (the "volume error" of medical segmentation, in 2-D); None where the class is
            in no ground truth. Given as None, every class gets None.
        evaluated_pixels: Pixels counted (ignore-label pixels excluded); None when unknown (rebuilt
            from TFMA metrics).
        classes_in_mean: How many classes the means average; None when unknown.
        hausdorff: The boundary distances, or None when not computed.
        format: The ground-truth format scored by ``segpipe score``; None elsewhere.
        class_names: The classes, in class-id order.
        num_images: How many images were evaluated, when known.
        unmatched_predictions: Predictions ``segpipe score`` matched to no ground truth; None elsewhere.
        confusion_matrix: Pixel counts, rows ground truth, columns prediction (a tuple of int rows),
            when known.
    """

    miou: float | None
    per_class_iou: dict[str, float | None]
    pixel_accuracy: float | None
    mean_dice: float | None
    per_class_dice: dict[str, float | None]
    mean_volume_error: float | None = None
    per_class_volume_error: dict[str, float | None] | None = None
    evaluated_pixels: int | None = None
    classes_in_mean: int | None = None
    hausdorff: HausdorffScores | None = None
    format: str | None = dataclasses.field(default=None, metadata=_CONTEXT)
    class_names: tuple[str, ...] = dataclasses.field(metadata=_CONTEXT)
    num_images: int | None = dataclasses.field(default=None, metadata=_CONTEXT)
    unmatched_predictions: int | None = dataclasses.field(default=None, metadata=_CONTEXT)
    confusion_matrix: tuple[tuple[int, ...], ...] | None = dataclasses.field(default=None, metadata=_CONTEXT)

    def __post_init__(self):
        class_names = tuple(str(name) for name in self.class_names)
        object.__setattr__(self, "class_names", class_names)
        if self.per_class_volume_error is None:
            object.__setattr__(self, "per_class_volume_error", {name: None for name in class_names})
        _copy_per_class_fields(self)
        for field_name, values in self._scores().items():
            if field_name in PER_CLASS_METRICS.values() and tuple(values) != class_names:
                raise ValueError(f"{field_name} has the classes {list(values)}, expected {list(class_names)}")
        if self.confusion_matrix is not None:
            matrix = np.asarray(self.confusion_matrix)
            if matrix.shape != (len(class_names),) * 2:
                raise ValueError(f"got {len(class_names)} class names for a confusion matrix of shape {matrix.shape}")
            object.__setattr__(self, CONFUSION_MATRIX, tuple(tuple(int(count) for count in row) for row in matrix))

    def _scores(self) -> dict[str, Any]:
        """Every score field by name, the Hausdorff ones flattened in (null when not computed)."""
        scores = {}
        for field in dataclasses.fields(self):
            if field.name == _HAUSDORFF_FIELD:
                scores.update({f.name: getattr(self.hausdorff, f.name) for f in dataclasses.fields(HausdorffScores)}
                              if self.hausdorff is not None else _hausdorff_not_computed(self.class_names))
            elif not field.metadata.get("context"):
                scores[field.name] = getattr(self, field.name)
        return scores

    def summary(self) -> dict[str, Any]:
        """The :data:`SUMMARY_METRICS` by name; None when undefined or not computed."""
        scores = self._scores()
        return {name: scores[name] for name in SUMMARY_METRICS}

    def class_scores(self, class_name: str) -> dict[str, Any]:
        """One class's :data:`PER_CLASS_METRICS` by name (``iou``, ``dice``, ``hd``, ...); None when undefined
        or not computed.

        Raises:
            ValueError: If the class is not one of ``class_names``.
        """
        if class_name not in self.per_class_iou:
            raise ValueError(f"class {class_name!r} is not in the result's 'per_class_iou' "
                             f"(known: {', '.join(self.class_names)})")
        scores = self._scores()
        return {metric: scores[field_name][class_name] for metric, field_name in PER_CLASS_METRICS.items()}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form, as ``segpipe score`` prints it.

        Keys in field order: every score (the Hausdorff ones flattened in, null per class too when not
        computed), then ``format``, ``class_names``, ``num_images``, ``unmatched_predictions`` and
        ``confusion_matrix`` (a list of int rows), each only when known.
        """
        document = {name: _plain(value) for name, value in self._scores().items()}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.metadata.get("context") and value is not None:
                document[field.name] = _plain(value)
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any] | EvaluationResult) -> EvaluationResult:
        """The inverse of :meth:`to_dict` (an :class:`EvaluationResult` is returned as it is).

        The Hausdorff part is read when :data:`HAUSDORFF_COMPUTED` is not null; unknown keys are ignored.

        Raises:
            ValueError: If a score or ``class_names`` is missing, or the classes disagree.
        """
        if isinstance(document, EvaluationResult):
            return document
        fields = dataclasses.fields(cls)
        _missing(document, [field.name for field in fields if field.default is dataclasses.MISSING])
        values = {field.name: document[field.name] for field in fields if field.name in document}
        values[_HAUSDORFF_FIELD] = None
        if document.get(HAUSDORFF_COMPUTED) is not None:
            names = [field.name for field in dataclasses.fields(HausdorffScores)]
            _missing(document, names)
            values[_HAUSDORFF_FIELD] = HausdorffScores(**{name: document[name] for name in names})
        return cls(**values)

    def to_metrics(self) -> dict[str, Any]:
        """Flat metric names, as the TFMA adapter reports them.

        Returns:
            The :data:`SUMMARY_METRICS`, then ``<name>/<class>`` for every :data:`PER_CLASS_METRICS`
            name and class; undefined or not computed (None) values are left out, not reported as 0.
            Then :data:`CONFUSION_MATRIX` as an ``int64`` array, when known.
        """
        scores = self._scores()
        metrics = {name: scores[name] for name in SUMMARY_METRICS if scores[name] is not None}
        for metric, field_name in PER_CLASS_METRICS.items():
            for class_name in self.class_names:
                value = scores[field_name][class_name]
                if value is not None:
                    metrics[f"{metric}/{class_name}"] = value
        if self.confusion_matrix is not None:
            metrics[CONFUSION_MATRIX] = np.asarray(self.confusion_matrix, dtype=np.int64)
        return metrics

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any], class_names: Sequence[str]) -> EvaluationResult:
        """The inverse of :meth:`to_metrics`: a result rebuilt from flat metric names (other names ignored).

        Counts (:data:`COUNT_METRICS`) come back as ints; scores that are missing are None.
        ``evaluated_pixels`` and ``classes_in_mean`` are not TFMA metrics: they are None.
        """
        def value(metric: str, name: str):
            found = metrics.get(name)
            return int(found) if found is not None and metric in COUNT_METRICS else found

        document: dict[str, Any] = {name: value(name, name) for name in SUMMARY_METRICS}
        for metric, field_name in PER_CLASS_METRICS.items():
            document[field_name] = {name: value(metric, f"{metric}/{name}") for name in class_names}
        document["class_names"] = class_names
        if metrics.get(CONFUSION_MATRIX) is not None:
            document[CONFUSION_MATRIX] = metrics[CONFUSION_MATRIX]
        return cls.from_dict(document)
