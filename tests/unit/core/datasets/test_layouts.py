"""Tests of components.core.datasets: the format lookup, root resolution across layouts, split requests
and strict listing."""

from __future__ import annotations

import pytest

from components.core import datasets
from components.core.datasets import cityscapes, voc
from components.core.datasets.splits import IngestionError, SkippedSplit
from components.core.label_maps import load_label_map


def test_a_folder_that_is_neither_layout_is_a_clear_error(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(IngestionError, match="not a PASCAL VOC 2012 folder: expected VOCdevkit/VOC2012") as error:
        datasets.resolve_dataset_root("voc", str(tmp_path))
    assert error.value.path == str(tmp_path)
    with pytest.raises(IngestionError, match="not a Cityscapes folder: expected leftImg8bit/ and gtFine/"):
        datasets.resolve_dataset_root("cityscapes", str(tmp_path))
    with pytest.raises(IngestionError, match="dataset folder not found"):
        datasets.resolve_dataset_root("voc", str(tmp_path / "missing"))


def test_the_wrong_format_gets_a_hint(voc_dir, cityscapes_dir):
    with pytest.raises(IngestionError, match="looks like a PASCAL VOC 2012 folder"):
        datasets.resolve_dataset_root("cityscapes", str(voc_dir))
    with pytest.raises(IngestionError, match="looks like a Cityscapes folder"):
        datasets.resolve_dataset_root("voc", str(cityscapes_dir))


def test_dataset_names_and_split_requests():
    assert datasets.dataset_name("voc") == datasets.dataset_name("pascal_voc") == "pascal_voc"
    with pytest.raises(ValueError, match="unknown dataset format 'coco'"):
        datasets.dataset_name("coco")
    kept, skipped = datasets.partition_splits("cityscapes", ["train", "val", "test"])
    assert kept == ["train", "val"]
    assert skipped == [SkippedSplit("test", "the Cityscapes test split has no usable labels "
                                            "(its public gtFine masks are blank)")]
    assert datasets.partition_splits("voc", ["test"]) == (["test"], [])
    for bad in (["../train"], ["train", "train"], [], "train"):
        with pytest.raises(ValueError):
            datasets.partition_splits("voc", bad)


def test_an_empty_split_is_listed_empty_or_refused_in_strict_mode(voc_copy):
    (voc_copy / "ImageSets" / "Segmentation" / "val.txt").write_text("")
    assert datasets.plan_split("voc", str(voc_copy), "val").listed == 0
    with pytest.raises(IngestionError, match="split 'val' is empty: nothing listed in"):
        datasets.plan_split("voc", str(voc_copy), "val", strict=True)


@pytest.mark.parametrize("dataset_format, layout, label_map", [
    ("voc", voc, "pascal_voc"), ("pascal_voc", voc, "pascal_voc"), ("VOC", voc, "pascal_voc"),
    ("cityscapes", cityscapes, "cityscapes"),
])
def test_formats_name_their_layout_and_label_map(dataset_format, layout, label_map):
    assert datasets.layout_of(dataset_format) is layout
    assert datasets.label_map_name(dataset_format) == label_map == load_label_map(label_map).name
    assert datasets.dataset_name(dataset_format) == layout.NAME
    with pytest.raises(ValueError, match="unknown dataset format 'coco'; expected 'voc' or 'cityscapes'"):
        datasets.label_map_name("coco")
