"""Small generated datasets shared by the tests of the dataset layouts and of ingestion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.core import sample_data


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory) -> Path:
    """A small generated VOC dataset (folder holding VOCdevkit); tests copy it before changing it."""
    out = tmp_path_factory.mktemp("voc")
    sample_data.write_voc_dataset(out, num_images=4, image_size=(24, 32), seed=1)
    return out


@pytest.fixture()
def voc_copy(voc_dir, tmp_path) -> Path:
    """A private copy of the generated VOC dataset's VOC2012 root."""
    shutil.copytree(voc_dir, tmp_path / "voc")
    return tmp_path / "voc" / "VOCdevkit" / "VOC2012"


@pytest.fixture(scope="module")
def cityscapes_dir(tmp_path_factory) -> Path:
    """A small generated Cityscapes dataset (its root): 2 train and 1 val frames."""
    out = tmp_path_factory.mktemp("cityscapes")
    sample_data.write_cityscapes_dataset(out, num_images=3, image_size=(16, 32), seed=1)
    return out
