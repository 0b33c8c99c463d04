"""Tests of components.core.reports: per-class tables (JSON and Markdown), the confusion-matrix heat-map
and the image | ground truth | prediction panels."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from components.core import reports
from components.core.evaluation_result import PER_CLASS_METRICS, SUMMARY_METRICS, EvaluationResult
from components.core.label_maps import load_label_map
from components.core.metrics import SegmentationEvaluator

CLASS_NAMES = ["background", "cat", "dog", "bird"]


@pytest.fixture(scope="module")
def result() -> EvaluationResult:
    """An evaluator result over one small image: bird is absent (null), dog is missed (IoU 0, one empty)."""
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 0, 0, 255]])
    pred = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 0, 3]])
    evaluator = SegmentationEvaluator(num_classes=4)
    evaluator.add(gt, pred)
    return dataclasses.replace(evaluator.result(CLASS_NAMES), num_images=1)


def test_per_class_table_rows(result: EvaluationResult) -> None:
    rows = reports.per_class_table(result, CLASS_NAMES)
    assert [row["class"] for row in rows] == CLASS_NAMES
    background, cat, dog, bird = rows
    # Pairs (gt, pred): (0,0)x5 (0,1)x1 (1,1)x4 (2,0)x1 -> IoU 5/7, 4/5, 0/1; Dice 10/12, 8/9, 0.
    assert background["iou"] == pytest.approx(5 / 7) and background["dice"] == pytest.approx(10 / 12)
    assert cat["iou"] == pytest.approx(4 / 5) and cat["dice"] == pytest.approx(8 / 9)
    assert cat["hd_pairs"] == 1 and cat["hd_one_empty"] == 0 and cat["hd95"] is not None
    # Areas over the 11 evaluated pixels, gt / pred: background 6 / 6, cat 4 / 5, dog 1 / 0 -> 0, 1/4, 1.
    assert background["volume_error"] == 0.0 and cat["volume_error"] == pytest.approx(0.25)
    assert dog == {"class": "dog", "iou": 0.0, "dice": 0.0, "volume_error": 1.0, "hd95": None, "hd_pairs": 0,
                   "hd_one_empty": 1}
    assert bird == {"class": "bird", "iou": None, "dice": None, "volume_error": None, "hd95": None, "hd_pairs": 0,
                    "hd_one_empty": 0}


def test_per_class_table_without_hausdorff_and_with_unknown_class(result: EvaluationResult) -> None:
    without_hausdorff = dataclasses.replace(result, hausdorff=None)
    rows = reports.per_class_table(without_hausdorff, CLASS_NAMES)
    assert all(row["hd95"] is None and row["hd_pairs"] is None for row in rows)
    with pytest.raises(ValueError, match="class 'horse' is not in the result's 'per_class_iou'"):
        reports.per_class_table(result, ["horse"])


def test_columns_and_overall_scores_name_scores_of_the_result() -> None:
    assert [key for key, _ in reports.TABLE_COLUMNS][1:] == ["iou", "dice", "volume_error", "hd95", "hd_pairs",
                                                              "hd_one_empty"]
    assert {key for key, _ in reports.TABLE_COLUMNS[1:]} <= set(PER_CLASS_METRICS)
    assert {key for key, _ in reports.OVERALL_SCORES} <= set(SUMMARY_METRICS)


def test_per_class_table_reads_the_dict_form_segpipe_score_prints(result: EvaluationResult) -> None:
    assert reports.per_class_table(result.to_dict(), CLASS_NAMES) == reports.per_class_table(result, CLASS_NAMES)
    assert reports.overall_scores(result.to_dict()) == reports.overall_scores(result)
    with pytest.raises(ValueError, match="not an evaluation result"):
        reports.per_class_table({"miou": 0.5}, CLASS_NAMES)


def test_write_per_class_table(result: EvaluationResult, tmp_path: pathlib.Path) -> None:
    json_path, markdown_path = reports.write_per_class_table(result, CLASS_NAMES, tmp_path / "report")
    assert json_path == tmp_path / "report" / "per_class.json" and markdown_path.name == "per_class.md"

    document = json.loads(json_path.read_text())
    assert document["classes"] == reports.per_class_table(result, CLASS_NAMES)
    assert document["overall"]["miou"] == pytest.approx((5 / 7 + 4 / 5 + 0) / 3)
    assert document["overall"]["num_images"] == 1

    markdown = markdown_path.read_text()
    table_rows = [line for line in markdown.splitlines() if line.startswith("| ")][2:]  # after the header and its rule
    assert len(table_rows) == len(CLASS_NAMES)
    assert table_rows[0] == (f"| background | 0.7143 | 0.8333 | 0.0000 | {result.hausdorff.per_class_hd95['background']:.4f} "
                             "| 1 | 0 |")
    assert table_rows[2] == "| dog | 0.0000 | 0.0000 | 1.0000 | — | 0 | 1 |"
    assert table_rows[3] == "| bird | — | — | — | — | 0 | 0 |"
    overall_line = next(line for line in markdown.splitlines() if line.startswith("**Overall**"))
    assert overall_line == (
        f"**Overall** (1 images): mIoU {(5 / 7 + 4 / 5) / 3:.4f}, pixel accuracy {9 / 11:.4f}, "
        f"mean Dice {(10 / 12 + 8 / 9) / 3:.4f}, mean area error {(0 + 0.25 + 1) / 3:.4f}, "
        f"HD {result.hausdorff.hd:.4f}, HD95 {result.hausdorff.hd95:.4f}"
    )


def test_row_normalised_matrix() -> None:
    fractions = reports.row_normalised(np.array([[3, 1], [0, 0]]))
    np.testing.assert_array_equal(fractions[0], [0.75, 0.25])
    assert np.isnan(fractions[1]).all()  # a class absent from the ground truth has no row to normalise


@pytest.mark.parametrize("label_map_name", ["pascal_voc", "cityscapes"])
def test_confusion_matrix_image_has_the_documented_size(tmp_path: pathlib.Path, label_map_name: str) -> None:
    class_names = load_label_map(label_map_name).class_names
    num_classes = len(class_names)
    matrix = np.diag(np.arange(1, num_classes + 1)) * 50 + np.random.default_rng(0).integers(0, 5, (num_classes,) * 2)
    matrix[3] = 0
    path = reports.write_confusion_matrix_image(matrix, class_names, tmp_path / "sub" / "matrix.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == reports.confusion_matrix_image_size(num_classes)
    assert reports.confusion_matrix_image_size(21) == (1375, 1300)  # 50 pixels per class: readable labels


def test_confusion_matrix_image_rejects_wrong_class_count(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="got 3 class names for a 2-class confusion matrix"):
        reports.write_confusion_matrix_image(np.eye(2), ["a", "b", "c"], tmp_path / "m.png")


def test_write_evaluation_report_writes_every_file(result: EvaluationResult, tmp_path: pathlib.Path) -> None:
    with_matrix = dataclasses.replace(result, confusion_matrix=[[5, 1, 0, 0], [0, 4, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    written = reports.write_evaluation_report(with_matrix, CLASS_NAMES, tmp_path)
    assert sorted(written) == ["confusion_matrix.png", "per_class.json", "per_class.md"]
    assert all(path.is_file() for path in written.values())
    without_matrix = dataclasses.replace(result, confusion_matrix=None)
    assert "confusion_matrix.png" not in reports.write_evaluation_report(without_matrix, CLASS_NAMES, tmp_path / "no_matrix")


# --------------------------------------------------------------------------------------------------
# Overlay panels
# --------------------------------------------------------------------------------------------------

IMAGE = np.full((3, 4, 3), 100, dtype=np.uint8)
GT = np.array([[0, 15, 15, 255], [0, 0, 7, 7], [0, 0, 0, 0]])
PRED = np.array([[0, 15, 0, 0], [0, 7, 7, 7], [9, 0, 0, 0]])


def test_overlay_panels_use_the_label_map_colours() -> None:
    voc = load_label_map("pascal_voc")
    panel = reports.overlay(IMAGE, GT, PRED, voc)
    width, gap = 4, reports.PANEL_GAP_PIXELS
    assert panel.shape == (3, 3 * width + 2 * gap, 3) and panel.dtype == np.uint8
    np.testing.assert_array_equal(panel[:, :width], IMAGE)
    assert (panel[:, width:width + gap] == 255).all()
    gt_panel = panel[:, width + gap:2 * width + gap]
    pred_panel = panel[:, 2 * (width + gap):]
    assert tuple(gt_panel[0, 1]) == voc.colors[15] == (192, 128, 128)  # person
    assert tuple(gt_panel[1, 2]) == voc.colors[7] == (128, 128, 128)  # car
    assert tuple(gt_panel[0, 3]) == voc.ignore_color == (224, 224, 192)  # void
    assert tuple(pred_panel[2, 0]) == voc.colors[9] == (192, 0, 0)  # chair
    assert tuple(pred_panel[0, 0]) == voc.colors[0] == (0, 0, 0)  # background


def test_overlay_blends_with_opacity_and_accepts_grey_images() -> None:
    cityscapes = load_label_map("cityscapes")
    grey = np.full((1, 2), 200, dtype=np.uint8)
    panel = reports.overlay(grey, np.array([[0, 255]]), np.array([[13, 0]]), cityscapes, opacity=0.5)
    gt_panel = panel[:, 2 + reports.PANEL_GAP_PIXELS:4 + reports.PANEL_GAP_PIXELS]
    expected_road = np.rint(0.5 * np.array(cityscapes.colors[0]) + 0.5 * 200)
    np.testing.assert_array_equal(gt_panel[0, 0], expected_road)
    np.testing.assert_array_equal(gt_panel[0, 1], [100, 100, 100])  # ignore colour (0, 0, 0) half over grey


def test_overlay_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"pred_ids has shape \(2, 2\), but the image is \(3, 4\)"):
        reports.overlay(IMAGE, GT, np.zeros((2, 2), dtype=np.uint8), load_label_map("pascal_voc"))


def test_write_overlay_round_trips(tmp_path: pathlib.Path) -> None:
    voc = load_label_map("pascal_voc")
    path = reports.write_overlay(IMAGE, GT, PRED, voc, tmp_path / "overlays" / "a.png")
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.size == (3 * 4 + 2 * reports.PANEL_GAP_PIXELS, 3)
        np.testing.assert_array_equal(np.array(image), reports.overlay(IMAGE, GT, PRED, voc))
