"""Tests of `segpipe score`, run in-process through pipeline.cli.main on generated folders."""

from __future__ import annotations

import json
import logging
import pathlib

import numpy as np
import pytest
from PIL import Image

from pipeline.cli import main
from components.core.label_maps import load_label_map

# (gt, pred) pairs outside the void pixel: (0,0)x2 (15,15)x1 (15,0)x1 (7,7)x1.
GT = np.array([[0, 15, 15], [0, 255, 7]], dtype=np.uint8)
PRED = np.array([[0, 15, 0], [0, 3, 7]], dtype=np.uint8)
EXPECTED_MIOU = (2 / 3 + 1 / 2 + 1.0) / 3  # background, person, car; every other class absent


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch):
    """main() configures process-wide logging and environment variables; undo that after each test."""
    for variable in ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY", "GLOG_minloglevel", "MLFLOW_LOGGING_LEVEL",
                     "PYTHONWARNINGS"):
        monkeypatch.delenv(variable, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture()
def voc_folders(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A VOC SegmentationClass folder with one palette mask, and a prediction folder for it."""
    palette = load_label_map("pascal_voc").palette()
    gt_dir, pred_dir = tmp_path / "VOC2012" / "SegmentationClass", tmp_path / "pred"
    gt_dir.mkdir(parents=True)
    pred_dir.mkdir()
    for array, path in ((GT, gt_dir / "2011_000003.png"), (PRED, pred_dir / "2011_000003.png")):
        image = Image.fromarray(array)
        image.putpalette(palette)  # an "L" image with a palette becomes a "P" image of the same indices
        image.save(path)
    return pred_dir, tmp_path / "VOC2012"


def test_score_prints_and_writes_json_and_report(voc_folders, tmp_path: pathlib.Path, capsys) -> None:
    pred_dir, gt_dir = voc_folders
    json_path, report_dir = tmp_path / "out" / "scores.json", tmp_path / "report"
    exit_code = main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir), "--format", "voc",
                      "--json", str(json_path), "--report", str(report_dir)])
    assert exit_code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json_path.read_text())
    assert printed["miou"] == pytest.approx(EXPECTED_MIOU)
    assert printed["num_images"] == 1 and printed["format"] == "voc"
    assert printed["per_class_iou"]["person"] == pytest.approx(1 / 2)
    assert printed["hd_pairs"] == 3  # background, person, car
    assert sorted(path.name for path in report_dir.iterdir()) == ["confusion_matrix.png", "per_class.json",
                                                                  "per_class.md"]
    assert "| person | 0.5000 | 0.6667 |" in (report_dir / "per_class.md").read_text()


def test_score_without_hausdorff(voc_folders, capsys) -> None:
    pred_dir, gt_dir = voc_folders
    assert main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir), "--format", "voc", "--no-hausdorff"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["hd"] is None and printed["hd95"] is None and printed["hd_pairs"] is None
    assert printed["miou"] == pytest.approx(EXPECTED_MIOU)


def test_score_trainids_with_num_classes(voc_folders, capsys) -> None:
    pred_dir, gt_dir = voc_folders
    assert main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir / "SegmentationClass"),
                 "--format", "trainids", "--num-classes", "21"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["class_names"][:2] == ["class_0", "class_1"]
    assert printed["miou"] == pytest.approx(EXPECTED_MIOU)


def test_missing_prediction_is_a_segpipe_message_naming_the_file(voc_folders, capsys) -> None:
    pred_dir, gt_dir = voc_folders
    (pred_dir / "2011_000003.png").unlink()
    assert main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir), "--format", "voc"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    expected_file = gt_dir / "SegmentationClass" / "2011_000003.png"
    assert f"segpipe: {expected_file}: no prediction found in {pred_dir}" in captured.err


def test_trainids_without_num_classes_is_a_segpipe_message(voc_folders, capsys) -> None:
    pred_dir, gt_dir = voc_folders
    assert main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir), "--format", "trainids"]) == 1
    assert "segpipe: format 'trainids' needs the number of classes (--num-classes N)" in capsys.readouterr().err


def test_unknown_format_is_rejected_by_the_parser(voc_folders, capsys) -> None:
    pred_dir, gt_dir = voc_folders
    with pytest.raises(SystemExit) as raised:
        main(["score", "--pred", str(pred_dir), "--gt", str(gt_dir), "--format", "coco"])
    assert raised.value.code == 2
    assert "invalid choice: 'coco'" in capsys.readouterr().err
