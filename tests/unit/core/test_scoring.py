"""Tests of components.core.scoring: known answers on tiny generated folders, the matching rule, every
error case (each names the file), and agreement with cityscapesscripts (mIoU) and medpy (HD95) on the
real samples."""

from __future__ import annotations

import json
import math
import pathlib
import types

import numpy as np
import pytest
from PIL import Image

from components.core.label_maps import load_label_map
from components.core.metrics import SegmentationEvaluator, resize_nearest
from components.core.scoring import ScoringError, match_predictions, score_folders

CITYSCAPES_FRAME = "frankfurt_000000_000294"
CITYSCAPES_SAMPLE_GT_DIR = "cityscapes_sample/gtFine/val"
VOC_SAMPLE_ROOT = "voc_sample/VOCdevkit/VOC2012"


def write_png(path: pathlib.Path, array: np.ndarray, palette: list[int] | None = None) -> pathlib.Path:
    """Writes a single-channel (or, with ``palette``, palette) PNG of the array's values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(array, dtype=np.uint8))
    if palette is not None:
        image.putpalette(palette)
    image.save(path)
    return path


# --------------------------------------------------------------------------------------------------
# Known answers (format trainids)
# --------------------------------------------------------------------------------------------------

# Image "a": pairs outside the ignored pixels (gt, pred): (0,0)x3 (0,1)x1 (1,1)x4 (2,2)x5 (2,1)x1.
GT_A = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255], [2, 2, 2, 2]])
PRED_A = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [2, 2, 0, 0], [2, 2, 2, 1]])
# Image "b": four background pixels, all right.
GT_B = np.zeros((2, 2))
PRED_B = np.zeros((2, 2))
# One confusion matrix over both images (never a mean of per-image scores).
EXPECTED_MATRIX = [[3 + 4, 1, 0], [0, 4, 0], [0, 1, 5]]


@pytest.fixture()
def trainid_folders(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    write_png(gt_dir / "a.png", GT_A)
    write_png(gt_dir / "nested" / "b.png", GT_B)
    write_png(pred_dir / "a.png", PRED_A)
    write_png(pred_dir / "b_pred.png", PRED_B)
    return pred_dir, gt_dir


def test_trainids_known_answers_from_one_confusion_matrix(trainid_folders) -> None:
    pred_dir, gt_dir = trainid_folders
    result = score_folders(pred_dir, gt_dir, "trainids", num_classes=3)
    assert result["confusion_matrix"] == EXPECTED_MATRIX
    assert result["num_images"] == 2
    assert result["class_names"] == ["class_0", "class_1", "class_2"]
    # IoU = TP / (TP + FP + FN): 7/8, 4/6, 5/6. Dice = 2TP / (2TP + FP + FN): 14/15, 8/10, 10/11.
    assert result["per_class_iou"] == pytest.approx({"class_0": 7 / 8, "class_1": 4 / 6, "class_2": 5 / 6})
    assert result["miou"] == pytest.approx((7 / 8 + 4 / 6 + 5 / 6) / 3)
    assert result["per_class_dice"] == pytest.approx({"class_0": 14 / 15, "class_1": 8 / 10, "class_2": 10 / 11})
    assert result["pixel_accuracy"] == pytest.approx(16 / 18)
    assert result["evaluated_pixels"] == 18
    # Hausdorff pairs: classes 0, 1, 2 in image a, class 0 in image b (identical: distance 0).
    assert result["hd_pairs"] == 4 and result["hd_one_empty"] == 0
    assert result["per_class_hd_pairs"] == {"class_0": 2, "class_1": 1, "class_2": 1}
    assert result["unmatched_predictions"] == 0
    json.dumps(result, allow_nan=False)


def test_hausdorff_known_answers_shift_and_one_empty(tmp_path: pathlib.Path) -> None:
    gt = np.zeros((12, 12))
    gt[3:7, 3:7] = 1
    pred = np.zeros((12, 12))
    pred[3:7, 5:9] = 1  # the square moved 2 pixels right: every boundary point within 2, some at 2
    pred[10, 10] = 2  # class 2 predicted, absent from the ground truth: one mask empty
    write_png(tmp_path / "gt" / "x.png", gt)
    write_png(tmp_path / "pred" / "x.png", pred)
    result = score_folders(tmp_path / "pred", tmp_path / "gt", "trainids", num_classes=3)
    assert result["per_class_hd"]["class_1"] == 2.0
    assert result["per_class_hd_pairs"] == {"class_0": 1, "class_1": 1, "class_2": 0}
    assert result["per_class_hd_one_empty"] == {"class_0": 0, "class_1": 0, "class_2": 1}
    assert result["per_class_hd95"]["class_2"] is None
    assert result["per_class_iou"]["class_2"] == 0.0  # only predicted: IoU 0, counted in the mean
    assert result["per_class_iou"]["class_1"] == pytest.approx(8 / 24)


def test_without_hausdorff_the_distance_entries_are_null(trainid_folders) -> None:
    pred_dir, gt_dir = trainid_folders
    result = score_folders(pred_dir, gt_dir, "trainids", num_classes=3, hausdorff=False)
    assert result["hd"] is None and result["hd95"] is None
    assert result["hd_pairs"] is None and result["hd_one_empty"] is None
    assert result["per_class_hd95"] == {"class_0": None, "class_1": None, "class_2": None}
    assert result["miou"] == pytest.approx((7 / 8 + 4 / 6 + 5 / 6) / 3)


# --------------------------------------------------------------------------------------------------
# VOC and Cityscapes layouts, matching rule
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gt_subdir", ["", "VOCdevkit", "VOCdevkit/VOC2012", "VOCdevkit/VOC2012/SegmentationClass"])
def test_voc_palette_ground_truth_in_any_of_its_folders(tmp_path: pathlib.Path, gt_subdir: str) -> None:
    voc = load_label_map("pascal_voc")
    gt = np.array([[0, 15, 15], [0, 255, 7]])  # background, person, car, one void pixel
    pred = np.array([[0, 15, 0], [0, 3, 7]])  # whatever is predicted on the void pixel is ignored
    write_png(tmp_path / "VOCdevkit/VOC2012/SegmentationClass/2011_000003.png", gt, voc.palette())
    write_png(tmp_path / "preds/run1/2011_000003_pred.png", pred, voc.palette())
    result = score_folders(tmp_path / "preds", tmp_path / gt_subdir, "voc")
    assert result["class_names"] == list(voc.class_names)
    assert result["per_class_iou"]["background"] == pytest.approx(2 / 3)
    assert result["per_class_iou"]["person"] == pytest.approx(1 / 2)
    assert result["per_class_iou"]["car"] == 1.0
    assert result["per_class_iou"]["bird"] is None  # predicted only on the void pixel: absent
    assert result["miou"] == pytest.approx((2 / 3 + 1 / 2 + 1.0) / 3)
    assert result["evaluated_pixels"] == 5


def test_voc_colour_ground_truth_decodes_like_the_palette_one(tmp_path: pathlib.Path) -> None:
    voc = load_label_map("pascal_voc")
    gt = np.array([[0, 15, 15], [0, 255, 7]])
    write_png(tmp_path / "palette/a.png", gt, voc.palette())
    (tmp_path / "colour").mkdir()
    Image.fromarray(voc.colorize(gt)).save(tmp_path / "colour/a.png")  # RGB, void in (224, 224, 192)
    write_png(tmp_path / "pred/a.png", np.array([[0, 15, 0], [0, 3, 7]]))
    from_palette = score_folders(tmp_path / "pred", tmp_path / "palette", "voc")
    from_colours = score_folders(tmp_path / "pred", tmp_path / "colour", "voc")
    assert from_colours == from_palette


@pytest.mark.parametrize("pred_name", [
    f"{CITYSCAPES_FRAME}.png",
    f"{CITYSCAPES_FRAME}_leftImg8bit.png",
    f"{CITYSCAPES_FRAME}_pred.png",
    f"frankfurt/{CITYSCAPES_FRAME}_gtFine_labelIds.png",
])
def test_cityscapes_predictions_match_by_frame_prefix(tmp_path: pathlib.Path, pred_name: str) -> None:
    label_ids = np.array([[7, 8], [26, 0]])  # road, sidewalk, car, unlabeled (ignored)
    write_png(tmp_path / f"gtFine/val/frankfurt/{CITYSCAPES_FRAME}_gtFine_labelIds.png", label_ids)
    write_png(tmp_path / "gtFine/val/frankfurt/other_000000_000001_gtFine_labelTrainIds.png", label_ids)  # not gt
    write_png(tmp_path / "pred" / pred_name, np.array([[0, 1], [13, 5]]))  # training ids
    write_png(tmp_path / "pred" / "munster_000000_000001.png", np.zeros((2, 2)))  # no such ground truth
    result = score_folders(tmp_path / "pred", tmp_path / "gtFine", "cityscapes")
    assert result["num_images"] == 1
    assert result["unmatched_predictions"] == 1
    assert result["miou"] == 1.0 and result["evaluated_pixels"] == 3
    assert [name for name, iou in result["per_class_iou"].items() if iou is not None] == ["road", "sidewalk", "car"]


def test_matching_prefers_the_exact_key_and_needs_an_underscore(tmp_path: pathlib.Path) -> None:
    for stem in ("a", "a_b"):
        write_png(tmp_path / "gt" / f"{stem}.png", np.zeros((2, 2)))
    write_png(tmp_path / "pred" / "a_b.png", np.zeros((2, 2)))  # exactly key a_b, not a + suffix
    write_png(tmp_path / "pred" / "a_x.png", np.zeros((2, 2)))  # key a with a suffix
    write_png(tmp_path / "pred" / "ab.png", np.zeros((2, 2)))  # matches nothing
    listing = match_predictions(tmp_path / "pred", tmp_path / "gt", "trainids")
    assert [(pair.key, pair.pred_path.name) for pair in listing.pairs] == [("a", "a_x.png"), ("a_b", "a_b.png")]
    assert [path.name for path in listing.unmatched_predictions] == ["ab.png"]


# --------------------------------------------------------------------------------------------------
# Errors: each names the file at fault
# --------------------------------------------------------------------------------------------------


def test_missing_prediction_names_the_ground_truth_file(trainid_folders) -> None:
    pred_dir, gt_dir = trainid_folders
    (pred_dir / "b_pred.png").unlink()
    with pytest.raises(ScoringError, match="no prediction found") as raised:
        score_folders(pred_dir, gt_dir, "trainids", num_classes=3)
    assert raised.value.path == str(gt_dir / "nested" / "b.png")
    assert str(raised.value).startswith(str(gt_dir / "nested" / "b.png"))


def test_near_miss_name_is_not_a_prediction(tmp_path: pathlib.Path) -> None:
    write_png(tmp_path / "gt/2011_000003.png", np.zeros((2, 2)))
    write_png(tmp_path / "pred/2011_0000031.png", np.zeros((2, 2)))
    with pytest.raises(ScoringError, match="2011_000003.png: no prediction found"):
        score_folders(tmp_path / "pred", tmp_path / "gt", "voc")


def test_a_prediction_of_another_size_is_resized_with_nearest_neighbour(trainid_folders, caplog) -> None:
    """A prediction at twice (or any other) size is scored at the ground truth's size, resized with
    nearest neighbour on class ids: twice the size gives back exactly the same scores."""
    pred_dir, gt_dir = trainid_folders
    write_png(pred_dir / "a.png", np.repeat(np.repeat(PRED_A, 2, axis=0), 2, axis=1))  # 8x8
    with caplog.at_level("INFO", logger="components.core.scoring"):
        result = score_folders(pred_dir, gt_dir, "trainids", num_classes=3)
    assert result["confusion_matrix"] == EXPECTED_MATRIX
    assert f"1 prediction(s) resized to their ground truth's size with nearest neighbour (e.g. {pred_dir / 'a.png'})" \
        in caplog.text
    # A size ratio that is not an integer: the ids come from the nearest source pixel (half-pixel centres),
    # never a blend of classes.
    odd = np.array([[0, 1, 2, 1, 0], [2, 2, 1, 0, 0], [1, 0, 0, 2, 2]])  # 5x3
    write_png(pred_dir / "a.png", odd)
    write_png(pred_dir / "b_pred.png", np.zeros((3, 3)))
    expected = SegmentationEvaluator(3, compute_hausdorff=False)
    expected.add(GT_A.astype(np.uint8), resize_nearest(odd, GT_A.shape))
    expected.add(GT_B.astype(np.uint8), PRED_B.astype(np.uint8))
    result = score_folders(pred_dir, gt_dir, "trainids", num_classes=3, hausdorff=False)
    assert result["confusion_matrix"] == expected.result(["class_0", "class_1", "class_2"]).to_dict()["confusion_matrix"]
    assert resize_nearest(odd, (4, 4)).tolist() == [[0, 1, 1, 0], [2, 2, 0, 0], [2, 2, 0, 0], [1, 0, 2, 2]]


def test_out_of_range_prediction_names_the_prediction(trainid_folders) -> None:
    pred_dir, gt_dir = trainid_folders
    write_png(pred_dir / "a.png", np.where(PRED_A == 2, 7, PRED_A))
    with pytest.raises(ScoringError, match=r"pred holds ids outside \[0, 3\): \[7\]") as raised:
        score_folders(pred_dir, gt_dir, "trainids", num_classes=3)
    assert raised.value.path == str(pred_dir / "a.png")
    assert str(gt_dir / "a.png") in str(raised.value)  # the pair is named too


def test_out_of_range_ground_truth_names_the_ground_truth(trainid_folders) -> None:
    pred_dir, gt_dir = trainid_folders
    write_png(gt_dir / "a.png", np.where(GT_A == 2, 9, GT_A))
    with pytest.raises(ScoringError, match=r"gt holds ids outside \[0, 3\) or the ignore label 255: \[9\]") as raised:
        score_folders(pred_dir, gt_dir, "trainids", num_classes=3)
    assert raised.value.path == str(gt_dir / "a.png")


def test_unknown_cityscapes_label_id_names_the_ground_truth(tmp_path: pathlib.Path) -> None:
    gt_path = write_png(tmp_path / f"gt/{CITYSCAPES_FRAME}_gtFine_labelIds.png", np.array([[7, 40]]))
    write_png(tmp_path / f"pred/{CITYSCAPES_FRAME}.png", np.array([[0, 0]]))
    with pytest.raises(ScoringError, match=r"label ids unknown to the cityscapes label map: \[40\]") as raised:
        score_folders(tmp_path / "pred", tmp_path / "gt", "cityscapes")
    assert raised.value.path == str(gt_path)


@pytest.mark.parametrize("bad_file, message", [
    ("rgb", "expected a single-channel PNG of class ids .* got mode RGB"),
    ("jpeg", "not a PNG file \\(Pillow reads it as JPEG\\)"),
    ("garbage", "cannot read the image"),
])
def test_unreadable_or_colour_prediction_names_the_prediction(trainid_folders, bad_file: str, message: str) -> None:
    pred_dir, gt_dir = trainid_folders
    bad_path = pred_dir / "a.png"
    if bad_file == "rgb":
        Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(bad_path)
    elif bad_file == "jpeg":
        Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(bad_path, format="JPEG")
    else:
        bad_path.write_bytes(b"not an image at all")
    with pytest.raises(ScoringError, match=message) as raised:
        score_folders(pred_dir, gt_dir, "trainids", num_classes=3)
    assert raised.value.path == str(bad_path)


def test_two_predictions_for_one_ground_truth_are_ambiguous(trainid_folders) -> None:
    pred_dir, gt_dir = trainid_folders
    write_png(pred_dir / "a_leftImg8bit.png", PRED_A)
    with pytest.raises(ScoringError, match="a second prediction for ground truth") as raised:
        score_folders(pred_dir, gt_dir, "trainids", num_classes=3)
    assert str(pred_dir / "a.png") in str(raised.value) and str(pred_dir / "a_leftImg8bit.png") in str(raised.value)


def test_folder_errors_name_the_folder(tmp_path: pathlib.Path, trainid_folders) -> None:
    pred_dir, gt_dir = trainid_folders
    with pytest.raises(ScoringError, match="prediction folder not found") as raised:
        score_folders(tmp_path / "missing", gt_dir, "trainids", num_classes=3)
    assert raised.value.path == str(tmp_path / "missing")
    with pytest.raises(ScoringError, match=r"no ground-truth files \(\*_gtFine_labelIds.png at any depth\)"):
        score_folders(pred_dir, gt_dir, "cityscapes")


def test_format_and_class_count_errors() -> None:
    with pytest.raises(ValueError, match="unknown ground-truth format 'coco'"):
        score_folders(".", ".", "coco")
    with pytest.raises(ValueError, match="needs the number of classes"):
        score_folders(".", ".", "trainids")
    with pytest.raises(ValueError, match="format 'voc' has 21 classes"):
        score_folders(".", ".", "voc", num_classes=19)


# --------------------------------------------------------------------------------------------------
# Agreement with the reference implementations on the real samples
# --------------------------------------------------------------------------------------------------


def test_cityscapes_miou_agrees_with_cityscapesscripts(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, cityscapes_evaluation
) -> None:
    from cityscapesscripts.helpers.labels import id2label, trainId2label

    gt_dir = shared_data / CITYSCAPES_SAMPLE_GT_DIR
    gt_path = gt_dir / "frankfurt" / f"{CITYSCAPES_FRAME}_gtFine_labelIds.png"
    gt_train_ids = load_label_map("cityscapes").to_train_ids(np.array(Image.open(gt_path)))
    # What a model emits: training ids everywhere, boundaries shifted, a block of random classes
    # (wall, traffic light and terrain are absent from the ground truth).
    rng = np.random.default_rng(294)
    pred = np.roll(np.where(gt_train_ids == 255, 0, gt_train_ids), shift=(2, 3), axis=(0, 1))
    pred[40:80, 100:180] = rng.choice([0, 1, 2, 3, 6, 8, 9, 13], size=(40, 80))
    write_png(tmp_path / "ours" / f"{CITYSCAPES_FRAME}_leftImg8bit.png", pred)
    # The official script reads predictions as raw label ids.
    train_id_to_label_id = np.array([trainId2label[train_id].id for train_id in range(19)])
    reference_pred_path = write_png(tmp_path / "reference" / f"{CITYSCAPES_FRAME}_pred.png", train_id_to_label_id[pred])

    reference_args = types.SimpleNamespace(evalInstLevelScore=False, evalPixelAccuracy=False, evalLabels=[])
    reference_matrix = cityscapes_evaluation.generateMatrix(reference_args)
    cityscapes_evaluation.evaluatePair(str(reference_pred_path), str(gt_path), reference_matrix, {}, {}, reference_args)
    reference_iou = {
        id2label[label_id].name: cityscapes_evaluation.getIouScoreForLabel(label_id, reference_matrix, reference_args)
        for label_id in reference_args.evalLabels
    }

    result = score_folders(tmp_path / "ours", gt_dir, "cityscapes", hausdorff=False)
    reference_miou = cityscapes_evaluation.getScoreAverage(reference_iou, reference_args)
    assert result["miou"] == pytest.approx(reference_miou, abs=1e-9)
    for name, iou in result["per_class_iou"].items():
        assert iou == (None if math.isnan(reference_iou[name]) else pytest.approx(reference_iou[name], abs=1e-9)), name
    assert result["per_class_iou"]["wall"] == 0.0


def test_voc_hd95_agrees_with_medpy(shared_data: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Scores the real VOC sample folder; chair, sofa, bus and bottle each occur in one image only."""
    import medpy.metric.binary

    gt_by_id = {}
    for image_id, shift in (("2011_000003", (2, 4)), ("2011_000006", (3, -5)), ("2011_000025", (-4, 1))):
        gt_path = shared_data / VOC_SAMPLE_ROOT / "SegmentationClass" / f"{image_id}.png"
        gt_by_id[image_id] = np.array(Image.open(gt_path))
        pred = np.roll(np.where(gt_by_id[image_id] == 255, 0, gt_by_id[image_id]), shift=shift, axis=(0, 1))
        write_png(tmp_path / "pred" / f"{image_id}.png", pred)
    result = score_folders(tmp_path / "pred", shared_data / "voc_sample", "voc")
    assert result["num_images"] == 3

    for image_id, class_id, name in (("2011_000006", 9, "chair"), ("2011_000006", 18, "sofa"),
                                     ("2011_000025", 6, "bus"), ("2011_000003", 5, "bottle")):
        gt = gt_by_id[image_id]
        pred = np.array(Image.open(tmp_path / "pred" / f"{image_id}.png"))
        gt_mask = gt == class_id
        pred_mask = (pred == class_id) & (gt != 255)  # predictions on void pixels are not evaluated
        assert result["per_class_hd95"][name] == pytest.approx(medpy.metric.binary.hd95(pred_mask, gt_mask), abs=1e-9)
        assert result["per_class_hd"][name] == pytest.approx(medpy.metric.binary.hd(pred_mask, gt_mask), abs=1e-9)
        assert result["per_class_hd_pairs"][name] == 1


def test_symbolic_links_to_folders_and_files_are_followed(trainid_folders, tmp_path: pathlib.Path) -> None:
    """Ground truth in a linked folder and a linked prediction file score as if they were in place; a link
    loop ends."""
    pred_dir, gt_dir = trainid_folders
    shared = tmp_path / "shared_storage"
    shared.mkdir()
    (gt_dir / "nested").rename(shared / "nested")
    (gt_dir / "nested").symlink_to(shared / "nested", target_is_directory=True)
    (gt_dir / "loop").symlink_to(gt_dir, target_is_directory=True)
    (pred_dir / "a.png").rename(shared / "a.png")
    (pred_dir / "a.png").symlink_to(shared / "a.png")
    result = score_folders(pred_dir, gt_dir, "trainids", num_classes=3)
    assert result["confusion_matrix"] == EXPECTED_MATRIX and result["num_images"] == 2
