"""Evaluation report artifacts: per-class tables, a confusion-matrix heat-map and prediction panels.

The pipeline's report step and ``segpipe score --report DIR`` render the same files from an
:class:`~components.core.evaluation_result.EvaluationResult` (as :meth:`SegmentationEvaluator.result
<components.core.metrics.SegmentationEvaluator.result>` returns it), or from its ``to_dict()`` form (as
:func:`components.core.scoring.score_folders` returns it); every function here accepts either:

* ``per_class.json`` and ``per_class.md`` (:func:`write_per_class_table`): IoU, Dice, HD95 and the
  Hausdorff pair counts of every class, plus the overall scores;
* ``confusion_matrix.png`` (:func:`write_confusion_matrix_image`): the row-normalised confusion matrix;
* overlay panels (:func:`overlay`, :func:`write_overlay`): image | ground truth | prediction, the masks
  in the dataset's colours.

Framework-free: numpy, Pillow and matplotlib, drawn through matplotlib's Agg canvas directly (no
pyplot, so the process-wide backend is never changed).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from components.core.evaluation_result import EvaluationResult
from components.core.label_maps import LabelMap

PER_CLASS_JSON = "per_class.json"
PER_CLASS_MARKDOWN = "per_class.md"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"

MISSING_VALUE = "—"
"""How the Markdown table shows a null (undefined or not computed) value."""

CLASS_COLUMN = "class"
"""Row key (and header) of the class name."""

TABLE_COLUMNS = (
    (CLASS_COLUMN, "class"),
    ("iou", "IoU"),
    ("dice", "Dice"),
    ("volume_error", "area error"),
    ("hd95", "HD95 (px)"),
    ("hd_pairs", "HD pairs"),
    ("hd_one_empty", "one empty"),
)
"""(row key, Markdown header) of each per-class column, in order; after the class name, the keys are
per-class score names of :data:`~components.core.evaluation_result.PER_CLASS_METRICS`."""

OVERALL_SCORES = (
    ("miou", "mIoU"),
    ("pixel_accuracy", "pixel accuracy"),
    ("mean_dice", "mean Dice"),
    ("mean_volume_error", "mean area error"),
    ("hd", "HD"),
    ("hd95", "HD95"),
)
"""(score name, label) of the overall scores, in the order they are written; the names are
:data:`~components.core.evaluation_result.SUMMARY_METRICS`."""

NUM_IMAGES = "num_images"
"""Key of the image count among the overall scores, when the result knows it."""

CONFUSION_CELL_PIXELS = 50
"""Side of one confusion-matrix cell in the heat-map, in pixels (a multiple of 25, as the margins: at
100 dpi their sizes in inches are then exact binary fractions, so the image has exactly the size
:func:`confusion_matrix_image_size` states)."""

CONFUSION_MARGIN_PIXELS = (325, 250)
"""Extra (width, height) of the heat-map for class names, axis titles, title and colour bar."""

_CONFUSION_DPI = 100
_CONFUSION_COLOURMAP = "Blues"
_ABSENT_ROW_COLOUR = "#d9d9d9"

PANEL_GAP_PIXELS = 4
"""Width of the white strip between the panels of :func:`overlay`."""

_PANEL_GAP_COLOUR = (255, 255, 255)


# --------------------------------------------------------------------------------------------------
# Per-class table
# --------------------------------------------------------------------------------------------------


Result = EvaluationResult | Mapping[str, Any]
"""What the functions here render: an :class:`EvaluationResult` or its ``to_dict()`` form."""


def per_class_table(result: Result, class_names: Sequence[str]) -> list[dict]:
    """One row per class from an evaluation result.

    Args:
        result: An evaluation result (see :data:`Result`).
        class_names: The classes, in the order of the rows.

    Returns:
        Dicts with keys ``class``, ``iou``, ``dice``, ``volume_error``, ``hd95``, ``hd_pairs`` and ``hd_one_empty``
        (see :data:`TABLE_COLUMNS`); a value is None when undefined or not computed.

    Raises:
        ValueError: If the result is not an evaluation result or a class name is not in it.
    """
    result = EvaluationResult.from_dict(result)
    rows = []
    for name in (str(name) for name in class_names):
        scores = result.class_scores(name)
        rows.append({CLASS_COLUMN: name, **{key: scores[key] for key, _ in TABLE_COLUMNS if key != CLASS_COLUMN}})
    return rows


def overall_scores(result: Result) -> dict:
    """The overall scores of a result (:data:`OVERALL_SCORES`, plus ``num_images`` when known); None when absent."""
    result = EvaluationResult.from_dict(result)
    summary = result.summary()
    overall = {key: summary[key] for key, _ in OVERALL_SCORES}
    if result.num_images is not None:
        overall[NUM_IMAGES] = result.num_images
    return overall


def _markdown_cell(value) -> str:
    if value is None:
        return MISSING_VALUE
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def per_class_markdown(result: Result, class_names: Sequence[str]) -> str:
    """The Markdown text of ``per_class.md``: the per-class table and a line of overall scores.

    Nulls are shown as :data:`MISSING_VALUE`, real numbers with 4 decimals.
    """
    rows = per_class_table(result, class_names)
    lines = [
        "# Per-class scores",
        "",
        "| " + " | ".join(header for _, header in TABLE_COLUMNS) + " |",
        "| --- |" + " ---: |" * (len(TABLE_COLUMNS) - 1),
    ]
    lines += ["| " + " | ".join(_markdown_cell(row[key]) for key, _ in TABLE_COLUMNS) + " |" for row in rows]
    overall = overall_scores(result)
    images = f" ({overall[NUM_IMAGES]} images)" if NUM_IMAGES in overall else ""
    scores = ", ".join(f"{label} {_markdown_cell(overall[key])}" for key, label in OVERALL_SCORES)
    lines += [
        "",
        f"**Overall**{images}: {scores}",
        "",
        f"{MISSING_VALUE}: undefined (class absent from both ground truth and prediction) or not computed. "
        "HD and HD95 are in pixels, averaged over the (image, class) pairs where both masks are non-empty; "
        "'one empty' counts the pairs where only one of them is.",
        "",
    ]
    return "\n".join(lines)


def write_per_class_table(
    result: Result, class_names: Sequence[str], out_dir: str | pathlib.Path
) -> tuple[pathlib.Path, pathlib.Path]:
    """Writes ``per_class.json`` (``{"overall": ..., "classes": [rows]}``) and ``per_class.md``.

    Args:
        result: An evaluation result (see :func:`per_class_table`).
        class_names: The classes, in row order.
        out_dir: Folder to write to (created if missing).

    Returns:
        ``(json_path, markdown_path)``.

    Raises:
        ValueError: As :func:`per_class_table`.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {"overall": overall_scores(result), "classes": per_class_table(result, class_names)}
    json_path = out_dir / PER_CLASS_JSON
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    markdown_path = out_dir / PER_CLASS_MARKDOWN
    markdown_path.write_text(per_class_markdown(result, class_names), encoding="utf-8")
    return json_path, markdown_path


# --------------------------------------------------------------------------------------------------
# Confusion matrix heat-map
# --------------------------------------------------------------------------------------------------


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Divides each row of a confusion matrix by its total: ``R[i, j] = M[i, j] / sum_j M[i, j]``.

    Row ``i`` then reads "of the pixels of ground-truth class i, the fraction predicted as j" (its
    diagonal entry is the recall of class i). Rows without any pixel are NaN.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {matrix.shape}")
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.full_like(matrix, np.nan), where=totals > 0)


def confusion_matrix_image_size(num_classes: int) -> tuple[int, int]:
    """Pixel size ``(width, height)`` of the heat-map for ``num_classes`` classes.

    ``CONFUSION_CELL_PIXELS`` per class plus :data:`CONFUSION_MARGIN_PIXELS`: 1375 x 1300 for 21 classes.
    """
    width_margin, height_margin = CONFUSION_MARGIN_PIXELS
    return num_classes * CONFUSION_CELL_PIXELS + width_margin, num_classes * CONFUSION_CELL_PIXELS + height_margin


def write_confusion_matrix_image(
    matrix: np.ndarray, class_names: Sequence[str], path: str | pathlib.Path
) -> pathlib.Path:
    """Draws the row-normalised confusion matrix (see :func:`row_normalised`) as a PNG heat-map.

    Rows are ground-truth classes, columns predicted classes, both labelled with the class names;
    each cell shows its percentage (blank below 0.5 %), and rows of classes absent from the ground
    truth are grey. The image size is :func:`confusion_matrix_image_size`.

    Args:
        matrix: Square confusion matrix of counts, rows ground truth, columns prediction.
        class_names: One name per row, in class-id order.
        path: PNG file to write (its folder is created if missing).

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        ValueError: If the matrix is not square or does not match ``class_names``.
    """
    fractions = row_normalised(matrix)
    num_classes = len(class_names)
    if fractions.shape[0] != num_classes:
        raise ValueError(f"got {num_classes} class names for a {fractions.shape[0]}-class confusion matrix")

    width, height = confusion_matrix_image_size(num_classes)
    figure = Figure(figsize=(width / _CONFUSION_DPI, height / _CONFUSION_DPI), dpi=_CONFUSION_DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colourmap = matplotlib.colormaps[_CONFUSION_COLOURMAP].with_extremes(bad=_ABSENT_ROW_COLOUR)
    heat_map = axes.imshow(np.ma.masked_invalid(fractions), cmap=colourmap, vmin=0.0, vmax=1.0)
    ticks = np.arange(num_classes)
    axes.set_xticks(ticks, labels=[str(name) for name in class_names], rotation=90)
    axes.set_yticks(ticks, labels=[str(name) for name in class_names])
    axes.set_xlabel("predicted class")
    axes.set_ylabel("ground-truth class")
    axes.set_title("Confusion matrix, % of each ground-truth class (grey: class absent)")
    for (row, column), fraction in np.ndenumerate(fractions):
        if fraction >= 0.005:
            axes.text(column, row, f"{100 * fraction:.0f}", ha="center", va="center", fontsize=8,
                      color="white" if fraction > 0.5 else "black")
    figure.colorbar(heat_map, ax=axes, fraction=0.04, pad=0.02).set_label("fraction of the ground-truth class")

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def write_evaluation_report(
    result: Result, class_names: Sequence[str], out_dir: str | pathlib.Path
) -> dict[str, pathlib.Path]:
    """Writes every report file a result allows: the per-class table, and the heat-map if the result
    holds a ``confusion_matrix`` (as evaluator and :func:`components.core.scoring.score_folders` results do).

    Args:
        result: An evaluation result.
        class_names: The classes, in class-id order.
        out_dir: Folder to write to (created if missing).

    Returns:
        ``{file name: path}`` of the files written.
    """
    result = EvaluationResult.from_dict(result)
    json_path, markdown_path = write_per_class_table(result, class_names, out_dir)
    written = {PER_CLASS_JSON: json_path, PER_CLASS_MARKDOWN: markdown_path}
    if result.confusion_matrix is not None:
        written[CONFUSION_MATRIX_PNG] = write_confusion_matrix_image(
            np.asarray(result.confusion_matrix), class_names, pathlib.Path(out_dir) / CONFUSION_MATRIX_PNG
        )
    return written


# --------------------------------------------------------------------------------------------------
# Overlay panels
# --------------------------------------------------------------------------------------------------


def _as_rgb_image(image: np.ndarray) -> np.ndarray:
    """Returns a uint8 ``(H, W, 3)`` image from a uint8 grey, RGB or RGBA array."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"the image must be a uint8 array, got dtype {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]
    raise ValueError(f"the image must have shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")


def _painted(image: np.ndarray, mask_colours: np.ndarray, opacity: float) -> np.ndarray:
    """``opacity * mask colours + (1 - opacity) * image``, rounded to uint8 (the colours alone at 1)."""
    if opacity == 1.0:
        return mask_colours
    blended = opacity * mask_colours.astype(np.float64) + (1.0 - opacity) * image.astype(np.float64)
    return np.rint(blended).astype(np.uint8)


def overlay(
    image_rgb: np.ndarray,
    gt_ids: np.ndarray,
    pred_ids: np.ndarray,
    label_map: LabelMap,
    opacity: float = 1.0,
) -> np.ndarray:
    """Builds a side-by-side panel: image | ground truth | prediction.

    The masks are drawn with :meth:`LabelMap.colorize <components.core.label_maps.LabelMap.colorize>`:
    every class in its dataset colour, the ignore label in the label map's ignore colour. Panels are
    separated by white strips :data:`PANEL_GAP_PIXELS` wide.

    Args:
        image_rgb: uint8 picture of shape ``(H, W, 3)`` (``(H, W)`` grey and ``(H, W, 4)`` RGBA accepted).
        gt_ids: ``(H, W)`` ground-truth training ids (ignore label allowed).
        pred_ids: ``(H, W)`` predicted training ids.
        label_map: The dataset's label map.
        opacity: Opacity of the mask colours over the picture, in ``[0, 1]``; 1 draws the colours alone.

    Returns:
        A uint8 array of shape ``(H, 3 * W + 2 * PANEL_GAP_PIXELS, 3)``.

    Raises:
        TypeError: If the image is not uint8 or a mask is not an integer array.
        ValueError: On mismatched shapes, mask values outside 0..255, or an opacity outside ``[0, 1]``.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity}")
    image = _as_rgb_image(image_rgb)
    panels = [image]
    for name, ids in (("gt_ids", gt_ids), ("pred_ids", pred_ids)):
        ids = np.asarray(ids)
        if ids.shape != image.shape[:2]:
            raise ValueError(f"{name} has shape {ids.shape}, but the image is {image.shape[:2]}")
        panels.append(_painted(image, label_map.colorize(ids), opacity))
    gap = np.empty((image.shape[0], PANEL_GAP_PIXELS, 3), dtype=np.uint8)
    gap[...] = _PANEL_GAP_COLOUR
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def write_overlay(
    image_rgb: np.ndarray,
    gt_ids: np.ndarray,
    pred_ids: np.ndarray,
    label_map: LabelMap,
    path: str | pathlib.Path,
    opacity: float = 1.0,
) -> pathlib.Path:
    """Writes :func:`overlay` as an RGB PNG (its folder is created if missing) and returns the path."""
    panel = overlay(image_rgb, gt_ids, pred_ids, label_map, opacity)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(panel).save(path, format="PNG")
    return path
