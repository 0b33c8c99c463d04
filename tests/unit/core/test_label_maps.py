"""Known-answer tests of the label maps against the official tables and the real dataset samples."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from components.core import label_maps
from components.core.label_maps import LabelMap, load_label_map

VOC_CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
CITYSCAPES_TRAIN_CLASS_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
# cityscapesscripts.helpers.labels: labelId 0..33 -> trainId.
CITYSCAPES_LUT = [255, 255, 255, 255, 255, 255, 255, 0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7, 8, 9,
                  10, 11, 12, 13, 14, 15, 255, 255, 16, 17, 18]

# Pixel counts per class index, from shared/data/README.md.
VOC_SAMPLE_CLASS_COUNTS = {
    "2011_000003": {0: 125767, 5: 873, 15: 32900, 255: 9460},
    "2011_000006": {0: 93492, 9: 44306, 15: 34791, 18: 14002, 255: 909},
    "2011_000025": {0: 62022, 6: 118222, 7: 7256},
}
# Training-id pixel counts of the full-resolution gtFine_color frame, derived from the README's colour table.
CITYSCAPES_COLOR_TRAIN_ID_COUNTS = {
    0: 808616, 1: 41960, 2: 621202, 5: 23957, 6: 3281, 7: 5319, 8: 8702, 10: 93574, 11: 213634, 12: 2054,
    13: 33903, 18: 125, 255: 239996 + 829,
}
CITYSCAPES_SAMPLE_DIR = pathlib.Path("cityscapes_sample/gtFine/val/frankfurt")
CITYSCAPES_SAMPLE_FRAME = "frankfurt_000000_000294"


def reference_voc_colormap() -> list[tuple[int, int, int]]:
    """The VOCdevkit ``VOClabelcolormap.m`` algorithm, written out independently of the module."""
    colormap = []
    for index in range(256):
        red = green = blue = 0
        code = index
        for bit in range(8):
            red |= ((code >> 0) & 1) << (7 - bit)
            green |= ((code >> 1) & 1) << (7 - bit)
            blue |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        colormap.append((red, green, blue))
    return colormap


def counts(array: np.ndarray) -> dict[int, int]:
    values, value_counts = np.unique(array, return_counts=True)
    return dict(zip(values.tolist(), value_counts.tolist()))


@pytest.fixture(scope="module")
def voc() -> LabelMap:
    return load_label_map("pascal_voc")


@pytest.fixture(scope="module")
def cityscapes() -> LabelMap:
    return load_label_map("cityscapes")


def test_voc_classes(voc):
    assert voc.name == "pascal_voc"
    assert voc.class_names == VOC_CLASS_NAMES
    assert voc.num_classes == 21
    assert voc.ignore_label == 255
    assert voc.ignore_color == (224, 224, 192)


def test_voc_colors_and_palette_equal_bitwise_colormap(voc):
    reference = reference_voc_colormap()
    assert list(voc.colors) == reference[:21]
    assert voc.palette() == [channel for color in reference for channel in color]
    assert label_maps.bitwise_colormap().tolist() == [list(color) for color in reference]


def test_voc_lookup_table_is_identity_for_classes_and_ignores_the_rest(voc):
    expected = list(range(21)) + [255] * (256 - 21)
    assert voc.id_to_train_id.dtype == np.uint8
    assert voc.id_to_train_id.tolist() == expected


def test_cityscapes_lookup_table_matches_cityscapesscripts(cityscapes):
    assert cityscapes.id_to_train_id.dtype == np.uint8
    assert cityscapes.id_to_train_id.shape == (256,)
    assert cityscapes.id_to_train_id[:34].tolist() == CITYSCAPES_LUT
    assert set(cityscapes.id_to_train_id[34:].tolist()) == {255}


def test_cityscapes_table_is_complete(cityscapes):
    assert cityscapes.class_names == CITYSCAPES_TRAIN_CLASS_NAMES
    assert cityscapes.num_classes == 19
    assert [label.id for label in cityscapes.labels] == list(range(34)) + [-1]
    plate = cityscapes.labels[-1]
    assert (plate.name, plate.train_id, plate.color, plate.category) == (
        "license plate", -1, (0, 0, 142), "vehicle")
    assert all(label.ignore_in_eval == (label.train_id in (255, -1)) for label in cityscapes.labels)
    road = cityscapes.labels[7]
    assert (road.name, road.color, road.category, road.category_id, road.has_instances) == (
        "road", (128, 64, 128), "flat", 1, False)
    assert [label.name for label in cityscapes.labels if label.has_instances] == [
        "person", "rider", "car", "truck", "bus", "caravan", "trailer", "train", "motorcycle", "bicycle"]


def test_both_label_map_files_share_one_schema():
    documents = [json.loads(path.read_text()) for path in sorted(label_maps.label_maps_dir().glob("*.json"))]
    assert [document["name"] for document in documents] == ["cityscapes", "pascal_voc"]
    assert {tuple(document) for document in documents} == {
        ("name", "description", "source", "ignore_label", "ignore_color", "labels")}
    for document in documents:
        assert all({"name", "id", "train_id", "color"} <= set(label) for label in document["labels"])


def test_every_shipped_label_map_uses_the_common_ignore_label():
    paths = sorted(label_maps.label_maps_dir().glob("*.json"))
    assert paths
    for path in paths:
        assert json.loads(path.read_text())["ignore_label"] == label_maps.IGNORE_LABEL, path
        assert load_label_map(path.stem).ignore_label == label_maps.IGNORE_LABEL


def test_voc_palette_matches_real_masks(voc, shared_data):
    mask_paths = sorted((shared_data / "voc_sample/VOCdevkit/VOC2012/SegmentationClass").glob("*.png"))
    assert len(mask_paths) == 3
    for path in mask_paths:
        with Image.open(path) as mask:
            assert mask.mode == "P"
            assert mask.getpalette() == voc.palette()


@pytest.mark.parametrize("image_id", sorted(VOC_SAMPLE_CLASS_COUNTS))
def test_real_voc_masks_decode_to_readme_counts(voc, shared_data, image_id):
    with Image.open(shared_data / f"voc_sample/VOCdevkit/VOC2012/SegmentationClass/{image_id}.png") as mask:
        indices = np.array(mask)
        colors = np.array(mask.convert("RGB"))
    train_ids = voc.to_train_ids(indices)
    assert counts(train_ids) == VOC_SAMPLE_CLASS_COUNTS[image_id]
    np.testing.assert_array_equal(voc.rgb_to_train_ids(colors), train_ids)


def test_real_cityscapes_label_ids_map_to_train_ids_up_to_resize_noise(cityscapes, shared_data):
    sample = shared_data / CITYSCAPES_SAMPLE_DIR
    label_ids = np.array(Image.open(sample / f"{CITYSCAPES_SAMPLE_FRAME}_gtFine_labelIds.png"))
    train_ids = np.array(Image.open(sample / f"{CITYSCAPES_SAMPLE_FRAME}_gtFine_labelTrainIds.png"))
    mapped = cityscapes.to_train_ids(label_ids)
    assert mapped.shape == label_ids.shape == (128, 256)
    assert mapped.dtype == np.uint8
    # The sample's two files were downscaled separately (see the README), so they disagree on 77 pixels.
    assert int(np.count_nonzero(mapped != train_ids)) == 77
    # ego vehicle, rectification border, out of roi and static pixels are all ignored.
    assert counts(mapped)[255] == 1890 + 987 + 764 + 233


def test_real_cityscapes_color_mask_decodes_to_train_ids(cityscapes, shared_data):
    color_path = (shared_data / "cityscapes_fullres_sample/gtFine/val/frankfurt"
                  / "frankfurt_000001_058914_gtFine_color.png")
    with Image.open(color_path) as color_mask:
        assert color_mask.mode == "RGBA"
        rgba = np.array(color_mask)
    assert counts(cityscapes.rgb_to_train_ids(rgba)) == CITYSCAPES_COLOR_TRAIN_ID_COUNTS


def test_rgb_decoding_names_unknown_colours(voc):
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 0] = (1, 2, 3)
    rgb[1, 2] = (250, 250, 250)
    with pytest.raises(ValueError, match=r"\(1, 2, 3\), \(250, 250, 250\)"):
        voc.rgb_to_train_ids(rgb)


def test_rgb_decoding_caps_the_list_of_unknown_colours(voc):
    rgb = np.stack([np.arange(1, 31), np.zeros(30), np.zeros(30)], axis=-1).reshape(5, 6, 3).astype(np.uint8)
    with pytest.raises(ValueError, match=r"and 20 more"):
        voc.rgb_to_train_ids(rgb)


def test_rgb_decoding_prefers_training_classes_on_shared_colours(cityscapes):
    rgb = np.array([[[153, 153, 153], [0, 0, 142], [0, 0, 0], [81, 0, 81]]], dtype=np.uint8)
    assert cityscapes.rgb_to_train_ids(rgb).tolist() == [[5, 13, 255, 255]]


@pytest.mark.parametrize("name", ["pascal_voc", "cityscapes"])
def test_colorize_then_decode_round_trips(name):
    label_map = load_label_map(name)
    rng = np.random.default_rng(0)
    train_ids = rng.integers(0, label_map.num_classes, size=(8, 9)).astype(np.uint8)
    train_ids[0, :3] = label_map.ignore_label
    rendered = label_map.colorize(train_ids)
    assert rendered.shape == (8, 9, 3)
    assert rendered.dtype == np.uint8
    assert tuple(rendered[0, 0]) == label_map.ignore_color
    np.testing.assert_array_equal(label_map.rgb_to_train_ids(rendered), train_ids)


def test_to_train_ids_accepts_wider_integer_dtypes(cityscapes):
    assert cityscapes.to_train_ids(np.array([[7, 26, 0, 255]], dtype=np.int32)).tolist() == [[0, 13, 255, 255]]


@pytest.mark.parametrize("mask, error", [
    (np.array([[1.0, 2.0]]), TypeError),
    (np.array([[-1, 3]]), ValueError),
    (np.array([[256]]), ValueError),
])
def test_masks_must_hold_8_bit_integer_values(voc, mask, error):
    with pytest.raises(error):
        voc.to_train_ids(mask)
    with pytest.raises(error):
        voc.colorize(mask)


def test_load_label_map_is_cached_and_rejects_unknown_names():
    assert load_label_map("cityscapes") is load_label_map("cityscapes")
    with pytest.raises(ValueError, match="cityscapes, pascal_voc"):
        load_label_map("ade20k")


def test_schemas_dir_is_the_repository_schemas_folder():
    repository_root = pathlib.Path(__file__).resolve().parents[3]
    assert label_maps.schemas_dir() == repository_root / "schemas"
    assert label_maps.available_label_maps() == ("cityscapes", "pascal_voc")


def test_label_map_is_immutable(voc):
    with pytest.raises(dataclasses.FrozenInstanceError):
        voc.ignore_label = 0  # type: ignore[misc]
    with pytest.raises(ValueError):
        voc.id_to_train_id[0] = 3


def toy_document(**overrides) -> dict:
    document = {
        "name": "toy",
        "ignore_label": 255,
        "ignore_color": [255, 255, 255],
        "labels": [
            {"name": "ground", "id": 3, "train_id": 0, "color": [10, 10, 10]},
            {"name": "thing", "id": 5, "train_id": 1, "color": [200, 0, 0]},
            {"name": "clutter", "id": 6, "train_id": 255, "color": [9, 9, 9]},
        ],
    }
    document.update(overrides)
    return document


def test_label_map_from_dict_builds_a_custom_map():
    toy = LabelMap.from_dict(toy_document())
    assert toy.class_names == ("ground", "thing")
    assert toy.to_train_ids(np.array([3, 5, 6, 0], dtype=np.uint8)).tolist() == [0, 1, 255, 255]
    assert toy.palette()[:6] == [10, 10, 10, 200, 0, 0]
    assert toy.palette()[255 * 3:] == [255, 255, 255]


@pytest.mark.parametrize("labels, message", [
    ([{"name": "a", "id": 1, "train_id": 0, "color": [1, 1, 1]},
      {"name": "b", "id": 2, "train_id": 2, "color": [2, 2, 2]}], "training ids"),
    ([{"name": "a", "id": 1, "train_id": 0, "color": [1, 1, 1]},
      {"name": "b", "id": 1, "train_id": 1, "color": [2, 2, 2]}], "raw ids"),
    ([{"name": "a", "id": 1, "train_id": 0, "color": [1, 1, 1]},
      {"name": "b", "id": 2, "train_id": 1, "color": [1, 1, 1]}], "share a colour"),
    ([{"name": "a", "id": 1, "train_id": 0, "color": [1, 1, 256]}], "0..255"),
    ([{"name": "a", "id": 300, "train_id": 0, "color": [1, 1, 1]}], "-1..255"),
    ([{"name": "a", "id": 1, "train_id": 0, "colour": [1, 1, 1]}], "unknown keys"),
])
def test_inconsistent_label_maps_are_rejected(labels, message):
    with pytest.raises(ValueError, match=message):
        LabelMap.from_dict(toy_document(labels=labels))
