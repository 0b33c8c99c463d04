"""Tests of components.core.datasets.voc: finding the VOC2012 root, listing a split, and where scoring
finds ground truth."""

from __future__ import annotations

import pytest

from components.core import datasets
from components.core.datasets import voc
from components.core.datasets.splits import IngestionError
from tests.support.datasets import first_train_id


@pytest.mark.parametrize("given", ["", "VOCdevkit", "VOCdevkit/VOC2012"])
def test_voc_root_is_found_from_parent_vocdevkit_or_voc2012(voc_dir, given):
    assert datasets.resolve_dataset_root("voc", str(voc_dir / given)) == str(voc_dir / "VOCdevkit" / "VOC2012")


def test_voc_split_lists_ids_in_order_with_their_paths(voc_dir):
    root = voc_dir / "VOCdevkit" / "VOC2012"
    plan = datasets.plan_split("voc", str(root), "trainval")
    ids = (root / "ImageSets" / "Segmentation" / "trainval.txt").read_text().split()
    assert [c.example_id for c in plan.candidates] == ids
    assert plan.source == str(root / "ImageSets" / "Segmentation" / "trainval.txt")
    first = plan.candidates[0]
    assert (first.image_path, first.mask_path, first.city, first.split, first.problem) == (
        str(root / "JPEGImages" / f"{ids[0]}.jpg"), str(root / "SegmentationClass" / f"{ids[0]}.png"), "",
        "trainval", None)


def test_a_missing_list_file_is_an_immediate_error_naming_the_available_lists(voc_dir):
    root = voc_dir / "VOCdevkit" / "VOC2012"
    with pytest.raises(IngestionError) as error:
        datasets.plan_split("voc", str(root), "train_aug")
    assert str(error.value) == (f"{root}/ImageSets/Segmentation/train_aug.txt: split list file not found "
                                "(available lists: train, trainval, val)")


def test_unsafe_and_repeated_ids_are_marked_without_touching_paths(voc_copy):
    list_path = voc_copy / "ImageSets" / "Segmentation" / "train.txt"
    good = first_train_id(voc_copy)
    list_path.write_text(f"{good}\n../../etc/passwd\n/etc/passwd\nsub/{good}\n\n{good}\n")
    plan = datasets.plan_split("voc", str(voc_copy), "train")
    problems = [(c.example_id, c.problem, c.problem_path, c.image_path) for c in plan.candidates]
    assert problems == [
        (good, None, None, str(voc_copy / "JPEGImages" / f"{good}.jpg")),
        ("../../etc/passwd", "id '../../etc/passwd' reaches outside the dataset root", str(list_path), ""),
        ("/etc/passwd", "id '/etc/passwd' is an absolute path, reaching outside the dataset root", str(list_path), ""),
        (f"sub/{good}", f"id 'sub/{good}' contains a path separator", str(list_path), ""),
        (good, f"id '{good}' listed more than once", str(list_path), ""),
    ]
    with pytest.raises(IngestionError, match=r"train.txt: id '\.\./\.\./etc/passwd' reaches outside the dataset root"):
        datasets.plan_split("voc", str(voc_copy), "train", strict=True)


def test_train_aug_reads_masks_from_segmentation_class_aug_when_present(voc_copy):
    ids = first_train_id(voc_copy)
    (voc_copy / "ImageSets" / "Segmentation" / "train_aug.txt").write_text(ids + "\n")
    assert datasets.plan_split("voc", str(voc_copy), "train_aug").candidates[0].mask_path.endswith(
        f"SegmentationClass/{ids}.png")
    (voc_copy / "SegmentationClassAug").mkdir()
    assert datasets.plan_split("voc", str(voc_copy), "train_aug").candidates[0].mask_path == str(
        voc_copy / "SegmentationClassAug" / f"{ids}.png")


@pytest.mark.parametrize("given", ["", "VOCdevkit", "VOCdevkit/VOC2012", "VOCdevkit/VOC2012/SegmentationClass"])
def test_scoring_finds_segmentation_class_from_any_folder_above_it(voc_dir, given):
    expected = voc_dir / "VOCdevkit" / "VOC2012" / "SegmentationClass"
    assert voc.ground_truth_folder(voc_dir / given) == expected


def test_scoring_prefers_the_nearest_segmentation_class(tmp_path):
    (tmp_path / "VOCdevkit" / "VOC2012" / "SegmentationClass").mkdir(parents=True)
    (tmp_path / "SegmentationClass").mkdir()
    assert voc.ground_truth_folder(tmp_path) == tmp_path / "SegmentationClass"
    assert voc.ground_truth_folder(tmp_path / "VOCdevkit") == tmp_path / "VOCdevkit" / "VOC2012" / "SegmentationClass"


def test_a_list_saved_with_a_byte_order_mark_keeps_its_first_id(voc_copy):
    list_path = voc_copy / "ImageSets" / "Segmentation" / "train.txt"
    ids = list_path.read_text().split()
    list_path.write_bytes(b"\xef\xbb\xbf" + "".join(f"{example_id} \r\n" for example_id in ids).encode())
    plan = datasets.plan_split("voc", str(voc_copy), "train")
    assert [candidate.example_id for candidate in plan.candidates] == ids
    assert all(candidate.problem is None for candidate in plan.candidates)
    assert plan.candidates[0].image_path == str(voc_copy / "JPEGImages" / f"{ids[0]}.jpg")
