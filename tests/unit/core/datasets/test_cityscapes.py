"""Tests of components.core.datasets.cityscapes: listing a split's images and labelIds masks by city
and frame."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.core import datasets, ingestion
from components.core.datasets.splits import IngestionError
from components.core.label_maps import load_label_map

CITYSCAPES_MAP = load_label_map("cityscapes")


def test_cityscapes_split_pairs_images_and_label_ids_by_city_and_frame(cityscapes_dir):
    plan = datasets.plan_split("cityscapes", str(cityscapes_dir), "train")
    assert plan.listed == 2
    for candidate in plan.candidates:
        assert candidate.image_path == str(cityscapes_dir / "leftImg8bit" / "train" / candidate.city /
                                           f"{candidate.example_id}_leftImg8bit.png")
        assert candidate.mask_path == str(cityscapes_dir / "gtFine" / "train" / candidate.city /
                                          f"{candidate.example_id}_gtFine_labelIds.png")
        assert candidate.example_id.startswith(candidate.city + "_")
    with pytest.raises(IngestionError,
                       match=r"leftImg8bit/test: split folder not found \(available splits: train, val\)"):
        datasets.plan_split("cityscapes", str(cityscapes_dir), "test")


def test_cityscapes_unpaired_images_and_masks_are_both_listed(tmp_path, cityscapes_dir):
    root = tmp_path / "cs"
    shutil.copytree(cityscapes_dir, root)
    image = next((root / "leftImg8bit" / "val").rglob("*_leftImg8bit.png"))
    mask = Path(str(image).replace("leftImg8bit", "gtFine", 1).replace("_leftImg8bit.png", "_gtFine_labelIds.png"))
    orphan_mask = mask.with_name("zurich_000099_000019_gtFine_labelIds.png")
    shutil.copy(mask, orphan_mask)
    mask.unlink()
    plan = datasets.plan_split("cityscapes", str(root), "val")
    label_map = CITYSCAPES_MAP
    outcomes = {}
    for candidate in plan.candidates:
        with pytest.raises(IngestionError) as error:
            ingestion.load_pair(candidate, label_map)
        outcomes[candidate.example_id] = (error.value.path, error.value.reason)
    assert outcomes == {
        image.name[: -len("_leftImg8bit.png")]: (str(mask), "mask file not found"),
        "zurich_000099_000019": (str(image.parent / "zurich_000099_000019_leftImg8bit.png"), "image file not found"),
    }


def test_a_city_folder_linked_from_elsewhere_is_listed(cityscapes_dir, tmp_path):
    root = tmp_path / "cityscapes"
    shutil.copytree(cityscapes_dir, root)
    elsewhere = tmp_path / "shared_storage"
    elsewhere.mkdir()
    for top in ("leftImg8bit", "gtFine"):
        (city,) = (root / top / "val").iterdir()
        shutil.move(str(city), elsewhere / top)
        (root / top / "val" / city.name).symlink_to(elsewhere / top, target_is_directory=True)
    (candidate,) = datasets.plan_split("cityscapes", str(root), "val").candidates
    assert candidate.image_path.startswith(str(root / "leftImg8bit" / "val"))
    assert candidate.mask_path.startswith(str(root / "gtFine" / "val"))
