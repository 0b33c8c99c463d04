"""Tests of the synthetic VOC and Cityscapes writers: exact layouts, mask formats, splits, determinism, and the
measurable difficulty of the scenes (rare classes, scales, thin structures, occlusion, colour overlap, lighting, JPEG)."""

from __future__ import annotations

import pathlib
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from components.core.label_maps import load_label_map
from components.core import sample_data
from components.core.sample_data import write_cityscapes_dataset, write_dataset, write_voc_dataset

# Real Cityscapes cities (cityscapesScripts' split lists).
CITYSCAPES_TRAIN_CITIES = {
    "aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt", "hamburg", "hanover", "jena",
    "krefeld", "monchengladbach", "strasbourg", "stuttgart", "tubingen", "ulm", "weimar", "zurich",
}
CITYSCAPES_VAL_CITIES = {"frankfurt", "lindau", "munster"}


def relative_files(root: pathlib.Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def read_tree(root: pathlib.Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in relative_files(root)}


def nearest_centroid_mean_accuracy(train_pairs, val_pairs) -> float:
    """Mean per-class accuracy on val of a nearest-centroid classifier of 5x5 mean pixel colours.

    A deliberately weak learner: if it beats chance clearly, a small CNN will too.
    """

    def features(image: np.ndarray) -> np.ndarray:
        padded = np.pad(image.astype(np.float64), ((2, 2), (2, 2), (0, 0)), mode="edge")
        height, width = image.shape[:2]
        return sum(padded[dy:dy + height, dx:dx + width] for dy in range(5) for dx in range(5)) / 25.0

    def labelled_pixels(pairs):
        feature_rows, label_rows = [], []
        for image, mask in pairs:
            valid = mask != 255
            feature_rows.append(features(image)[valid])
            label_rows.append(mask[valid])
        return np.concatenate(feature_rows), np.concatenate(label_rows)

    train_features, train_labels = labelled_pixels(train_pairs)
    classes = np.unique(train_labels)
    centroids = np.stack([train_features[train_labels == label].mean(axis=0) for label in classes])
    val_features, val_labels = labelled_pixels(val_pairs)
    distances = ((val_features[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    predictions = classes[np.argmin(distances, axis=1)]
    per_class_accuracy = [np.mean(predictions[val_labels == label] == label) for label in np.unique(val_labels)]
    return float(np.mean(per_class_accuracy))


# --------------------------------------------------------------------------------------------------
# PASCAL VOC
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def voc_dataset(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("voc")
    return out_dir, write_voc_dataset(out_dir)


def load_voc_pair(root: pathlib.Path, image_id: str) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(root / "JPEGImages" / f"{image_id}.jpg") as image, \
            Image.open(root / "SegmentationClass" / f"{image_id}.png") as mask:
        return np.array(image), np.array(mask)


def test_voc_layout_is_exactly_the_official_one(voc_dataset):
    out_dir, summary = voc_dataset
    root = out_dir / "VOCdevkit" / "VOC2012"
    assert summary["root"] == str(root)
    ids = summary["splits"]["trainval"]
    expected = {f"JPEGImages/{image_id}.jpg" for image_id in ids}
    expected |= {f"SegmentationClass/{image_id}.png" for image_id in ids}
    expected |= {f"ImageSets/Segmentation/{split}.txt" for split in ("train", "val", "trainval")}
    assert relative_files(root) == expected
    assert relative_files(out_dir) == {f"VOCdevkit/VOC2012/{name}" for name in expected}


def test_voc_ids_look_like_official_ids(voc_dataset):
    _, summary = voc_dataset
    ids = summary["splits"]["trainval"]
    assert len(ids) == len(set(ids)) == 24
    assert all(re.fullmatch(r"20(0[7-9]|1[0-2])_\d{6}", image_id) for image_id in ids)


def test_voc_split_lists_are_consistent(voc_dataset):
    out_dir, summary = voc_dataset
    lists_dir = out_dir / "VOCdevkit/VOC2012/ImageSets/Segmentation"
    on_disk = {split: (lists_dir / f"{split}.txt").read_text().splitlines() for split in summary["splits"]}
    assert on_disk == summary["splits"]
    assert summary["counts"] == {"train": 18, "val": 6, "trainval": 24}
    assert not set(on_disk["train"]) & set(on_disk["val"])
    assert on_disk["trainval"] == sorted(on_disk["train"] + on_disk["val"])
    assert all(ids == sorted(ids) for ids in on_disk.values())
    assert (lists_dir / "train.txt").read_text().endswith("\n")


def test_voc_images_and_masks_have_official_formats(voc_dataset):
    out_dir, summary = voc_dataset
    root = out_dir / "VOCdevkit/VOC2012"
    voc = load_label_map("pascal_voc")
    allowed = {voc.class_names.index(name) for name in summary["classes"]} | {255}
    seen = set()
    for image_id in summary["splits"]["trainval"]:
        with Image.open(root / "JPEGImages" / f"{image_id}.jpg") as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 64))
        with Image.open(root / "SegmentationClass" / f"{image_id}.png") as mask:
            assert (mask.format, mask.mode, mask.size) == ("PNG", "P", (64, 64))
            assert mask.getpalette() == voc.palette()
            indices = np.array(mask)
        values = set(np.unique(indices).tolist())
        assert values <= allowed
        assert {0, 255} <= values and len(values) >= 3  # background, void and at least one object
        seen |= values
    assert seen == allowed
    assert "background" in summary["classes"] and len(summary["classes"]) >= 4


def test_voc_masks_separate_objects_with_a_void_band(voc_dataset):
    out_dir, summary = voc_dataset
    root = out_dir / "VOCdevkit/VOC2012"
    for image_id in summary["splits"]["trainval"]:
        _, mask = load_voc_pair(root, image_id)
        # Each pixel against its neighbour below, right, below-right and below-left: all 8-neighbourhoods.
        pixel_neighbour_views = [(mask[:-1, :], mask[1:, :]), (mask[:, :-1], mask[:, 1:]),
                                 (mask[:-1, :-1], mask[1:, 1:]), (mask[:-1, 1:], mask[1:, :-1])]
        for pixel, neighbour in pixel_neighbour_views:
            touching = (pixel != neighbour) & (pixel != 255) & (neighbour != 255)
            assert not touching.any(), f"{image_id}: two classes touch without void between them"
        assert np.mean(mask == 255) < 0.3


def test_voc_writer_is_deterministic_by_seed(tmp_path):
    first = write_voc_dataset(tmp_path / "a", num_images=4, seed=7)
    second = write_voc_dataset(tmp_path / "b", num_images=4, seed=7)
    other = write_voc_dataset(tmp_path / "c", num_images=4, seed=8)
    assert first["splits"] == second["splits"]
    assert read_tree(tmp_path / "a") == read_tree(tmp_path / "b")
    masks = "VOCdevkit/VOC2012/SegmentationClass"
    assert read_tree(tmp_path / "a" / masks) != read_tree(tmp_path / "c" / masks)
    assert other["splits"]["trainval"] == first["splits"]["trainval"]


def test_voc_image_size_is_height_by_width(tmp_path):
    summary = write_voc_dataset(tmp_path, num_images=2, image_size=(32, 48))
    image, mask = load_voc_pair(pathlib.Path(summary["root"]), summary["splits"]["trainval"][0])
    assert image.shape == (32, 48, 3)
    assert mask.shape == (32, 48)


@pytest.mark.parametrize("num_images, expected_counts", [
    (1, {"train": 1, "val": 0, "trainval": 1}),
    (2, {"train": 1, "val": 1, "trainval": 2}),
    (3, {"train": 2, "val": 1, "trainval": 3}),
])
def test_voc_small_datasets_keep_both_splits_when_possible(tmp_path, num_images, expected_counts):
    summary = write_voc_dataset(tmp_path, num_images=num_images)
    assert summary["counts"] == expected_counts
    val_list = tmp_path / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt"
    assert val_list.read_text().splitlines() == summary["splits"]["val"]


@pytest.mark.parametrize("arguments", [{"num_images": 0}, {"val_fraction": 0.0}, {"val_fraction": 1.0},
                                       {"image_size": (64, 8)}])
def test_voc_writer_rejects_bad_arguments(tmp_path, arguments):
    with pytest.raises(ValueError):
        write_voc_dataset(tmp_path, **arguments)


def test_voc_content_is_learnable(voc_dataset):
    out_dir, summary = voc_dataset
    root = out_dir / "VOCdevkit/VOC2012"
    train = [load_voc_pair(root, image_id) for image_id in summary["splits"]["train"]]
    val = [load_voc_pair(root, image_id) for image_id in summary["splits"]["val"]]
    # Colour is no giveaway any more (test_voc_class_colours_overlap_...), but it still tells a lot.
    chance = 1 / len(summary["classes"])
    assert nearest_centroid_mean_accuracy(train, val) > 2.5 * chance


# --------------------------------------------------------------------------------------------------
# Cityscapes
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cityscapes_dataset(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("cityscapes")
    return out_dir, write_cityscapes_dataset(out_dir)


def frame_paths(root: pathlib.Path, split: str, frame: str) -> dict[str, pathlib.Path]:
    city = frame.split("_")[0]
    return {
        "image": root / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png",
        "label_ids": root / "gtFine" / split / city / f"{frame}_gtFine_labelIds.png",
        "train_ids": root / "gtFine" / split / city / f"{frame}_gtFine_labelTrainIds.png",
    }


def load_cityscapes_arrays(root: pathlib.Path, split: str, frame: str) -> dict[str, np.ndarray]:
    arrays = {}
    for kind, path in frame_paths(root, split, frame).items():
        with Image.open(path) as image:
            arrays[kind] = np.array(image)
    return arrays


def test_cityscapes_layout_is_exactly_the_official_one(cityscapes_dataset):
    out_dir, summary = cityscapes_dataset
    assert summary["root"] == str(out_dir)
    assert summary["counts"] == {"train": 4, "val": 2}
    expected = {
        path.relative_to(out_dir).as_posix()
        for split, frames in summary["splits"].items()
        for frame in frames
        for path in frame_paths(out_dir, split, frame).values()
    }
    assert len(expected) == 3 * 6
    assert relative_files(out_dir) == expected


def test_cityscapes_names_use_real_cities_of_each_split(cityscapes_dataset):
    out_dir, summary = cityscapes_dataset
    assert set(summary["cities"]["train"]) <= CITYSCAPES_TRAIN_CITIES
    assert set(summary["cities"]["val"]) <= CITYSCAPES_VAL_CITIES
    for split in ("train", "val"):
        for path in (out_dir / "leftImg8bit" / split).glob("*/*.png"):
            match = re.fullmatch(r"([a-z]+)_(\d{6})_(\d{6})_leftImg8bit\.png", path.name)
            assert match and match.group(1) == path.parent.name
            assert match.group(1) in summary["cities"][split]


def test_cityscapes_ground_truth_formats_and_train_ids(cityscapes_dataset):
    out_dir, summary = cityscapes_dataset
    cityscapes = load_label_map("cityscapes")
    seen_ids = set()
    for split, frames in summary["splits"].items():
        for frame in frames:
            paths = frame_paths(out_dir, split, frame)
            for kind, expected_mode in (("image", "RGB"), ("label_ids", "L"), ("train_ids", "L")):
                with Image.open(paths[kind]) as image:
                    assert (image.format, image.mode, image.size) == ("PNG", expected_mode, (128, 64))
            arrays = load_cityscapes_arrays(out_dir, split, frame)
            assert arrays["label_ids"].dtype == arrays["train_ids"].dtype == np.uint8
            expected_train_ids = np.asarray(cityscapes.id_to_train_id)[arrays["label_ids"]]
            np.testing.assert_array_equal(arrays["train_ids"], expected_train_ids)
            seen_ids |= set(np.unique(arrays["label_ids"]).tolist())
    assert seen_ids == set(summary["label_ids"])
    assert {0, 1, 4} <= seen_ids  # unlabeled, ego vehicle and static all map to 255
    assert seen_ids <= set(range(34))
    assert len(summary["classes"]) >= 6


def test_cityscapes_writer_is_deterministic_by_seed(tmp_path):
    write_cityscapes_dataset(tmp_path / "a", num_images=3, seed=5)
    write_cityscapes_dataset(tmp_path / "b", num_images=3, seed=5)
    write_cityscapes_dataset(tmp_path / "c", num_images=3, seed=6)
    assert read_tree(tmp_path / "a") == read_tree(tmp_path / "b")
    assert read_tree(tmp_path / "a") != read_tree(tmp_path / "c")


def test_cityscapes_custom_cities_and_size(tmp_path):
    summary = write_cityscapes_dataset(tmp_path, num_images=3, image_size=(48, 96),
                                       cities={"train": ["zurich"], "val": ["munster"]})
    assert summary["splits"] == {"train": ["zurich_000000_000019", "zurich_000001_000019"],
                                 "val": ["munster_000000_000019"]}
    arrays = load_cityscapes_arrays(tmp_path, "val", "munster_000000_000019")
    assert arrays["image"].shape == (48, 96, 3)
    assert arrays["label_ids"].shape == (48, 96)


@pytest.mark.parametrize("arguments", [{"num_images": 0}, {"cities": {"train": ["aachen"]}},
                                       {"cities": {"train": ["aachen"], "val": []}}, {"image_size": (8, 128)}])
def test_cityscapes_writer_rejects_bad_arguments(tmp_path, arguments):
    with pytest.raises(ValueError):
        write_cityscapes_dataset(tmp_path, **arguments)


def test_cityscapes_content_is_learnable(tmp_path):
    summary = write_cityscapes_dataset(tmp_path, num_images=9)

    def pairs(split):
        frames = [load_cityscapes_arrays(tmp_path, split, frame) for frame in summary["splits"][split]]
        return [(arrays["image"], arrays["train_ids"]) for arrays in frames]

    chance = 1 / len(summary["classes"])
    assert nearest_centroid_mean_accuracy(pairs("train"), pairs("val")) > 3 * chance


def test_write_dataset_dispatches_by_format_and_keeps_writer_defaults(tmp_path):
    summary = write_dataset("cityscapes", tmp_path / "cs", num_images=2)
    assert sum(summary["counts"].values()) == 2
    assert write_dataset("voc", tmp_path / "voc", image_size=(24, 32))["counts"]["trainval"] == 24
    with pytest.raises(ValueError, match="unknown dataset format 'coco'"):
        write_dataset("coco", tmp_path / "coco")


# --------------------------------------------------------------------------------------------------
# Difficulty: measurable properties of real scenes. Each check but the occlusion one fails on the first
# generator, whose five VOC classes were single-coloured shapes a third to half of the frame wide (which
# overlapped too), saved at JPEG quality 90, with no lighting change between pictures.
# --------------------------------------------------------------------------------------------------


def class_fractions(masks) -> dict[int, float]:
    """Share of the labelled (non-void) pixels of a set of masks held by each class present."""
    labels = np.concatenate([mask[mask != 255].ravel() for mask in masks])
    return {int(label): float(np.mean(labels == label)) for label in np.unique(labels)}


def object_parts(mask: np.ndarray, background: int = 0) -> list[tuple[int, float]]:
    """(extent, width) of each connected part (8-connectivity) of every object class in a mask.

    The extent is the longer side of the part's bounding box; the width is twice the 90th percentile of
    its pixels' distance to the nearest pixel outside it (a line three pixels wide measures 2-4).
    """
    parts = []
    for label in np.unique(mask):
        if label in (background, 255):
            continue
        count, components = cv2.connectedComponents((mask == label).astype(np.uint8), connectivity=8)
        for component in range(1, count):
            part = (components == component).astype(np.uint8)
            rows, cols = np.nonzero(part)
            depth = cv2.distanceTransform(np.pad(part, 1), cv2.DIST_L2, 3)[1:-1, 1:-1][part > 0]
            parts.append((int(max(np.ptp(rows), np.ptp(cols)) + 1), float(2 * np.quantile(depth, 0.9))))
    return parts


def colour_overlap(pairs, background: int = 0) -> float:
    """The largest Bhattacharyya coefficient between two object classes' RGB histograms (8 bins a channel):
    0 when no two classes share a colour, 1 when two have the same colour distribution."""
    histograms: dict[int, np.ndarray] = {}
    for image, mask in pairs:
        for label in np.unique(mask):
            if label not in (background, 255):
                histogram, _ = np.histogramdd(image[mask == label].reshape(-1, 3), bins=8, range=[(0, 256)] * 3)
                histograms[label] = histograms.get(label, 0) + histogram
    labels = sorted(histograms)
    return max(float(np.sum(np.sqrt(histograms[a] / histograms[a].sum() * histograms[b] / histograms[b].sum())))
               for index, a in enumerate(labels) for b in labels[index + 1:])


def brightness_variation(pairs, label: int) -> float:
    """Coefficient of variation, over the pictures, of the mean brightness of one class's pixels."""
    means = [image.mean(axis=2)[mask == label].mean() for image, mask in pairs if np.count_nonzero(mask == label) > 20]
    return float(np.std(means) / np.mean(means))


def blockiness(image: np.ndarray) -> float:
    """Mean brightness step across 8x8 block borders over the mean step inside blocks (1 without JPEG)."""
    brightness = image.astype(np.float64).mean(axis=2)
    border, inside = [], []
    for steps in (np.abs(np.diff(brightness, axis=1)), np.abs(np.diff(brightness, axis=0)).T):
        on_border = np.arange(steps.shape[1]) % 8 == 7
        border.append(steps[:, on_border].mean())
        inside.append(steps[:, ~on_border].mean())
    return float(np.sum(border) / np.sum(inside))


@pytest.fixture(scope="module")
def default_voc_pairs(tmp_path_factory):
    """The (image, mask) pairs of the dataset `make run` trains on (48 pictures of 64x64, seed 0)."""
    out_dir = tmp_path_factory.mktemp("voc_default")
    summary = write_voc_dataset(out_dir, num_images=48, image_size=(64, 64), seed=0)
    return [load_voc_pair(pathlib.Path(summary["root"]), image_id) for image_id in summary["splits"]["trainval"]]


def test_voc_classes_are_imbalanced_with_rare_classes(default_voc_pairs):
    fractions = class_fractions(mask for _, mask in default_voc_pairs)
    objects = {label: share for label, share in fractions.items() if label != 0}
    assert len(objects) >= 6
    assert min(objects.values()) < 0.02  # a rare class
    assert max(objects.values()) > 2 * min(objects.values())  # the first generator's were within 1.7x


def test_voc_objects_span_scales_from_a_few_pixels_to_half_the_frame(default_voc_pairs):
    extents = np.array([extent for _, mask in default_voc_pairs for extent, _ in object_parts(mask)])
    assert np.mean(extents <= 6) > 0.1  # a tenth of the parts are at most 6 pixels (a tenth of the frame)
    assert extents.max() >= 32


def test_voc_scenes_hold_thin_structures(default_voc_pairs):
    thin = [(extent, width) for _, mask in default_voc_pairs for extent, width in object_parts(mask)
            if extent >= 12 and width <= 4]
    assert len(thin) >= 10  # long parts at most ~3 pixels wide: bicycle frames and wheels, bottles, tails


def test_voc_objects_occlude_each_other(default_voc_pairs):
    """Pictures where two different object classes meet (across the void band) show one hiding the other."""
    def two_classes_meet(mask: np.ndarray) -> bool:
        labels = [label for label in np.unique(mask) if label not in (0, 255)]
        grown = {label: cv2.dilate((mask == label).astype(np.uint8), np.ones((5, 5), np.uint8)) for label in labels}
        return any((grown[a] & grown[b]).any() for i, a in enumerate(labels) for b in labels[i + 1:])

    assert np.mean([two_classes_meet(mask) for _, mask in default_voc_pairs]) > 0.3


def test_voc_class_colours_overlap_so_colour_alone_does_not_decide(default_voc_pairs):
    assert colour_overlap(default_voc_pairs) > 0.4
    train, val = default_voc_pairs[:36], default_voc_pairs[36:]
    assert nearest_centroid_mean_accuracy(train, val) < 0.75  # the first generator's colours scored > 0.9


def test_voc_lighting_varies_between_pictures(default_voc_pairs):
    assert brightness_variation(default_voc_pairs, label=0) > 0.12


def test_voc_pictures_are_moderate_quality_jpegs(voc_dataset):
    out_dir, summary = voc_dataset
    with Image.open(out_dir / "VOCdevkit/VOC2012/JPEGImages" / f"{summary['splits']['train'][0]}.jpg") as image:
        assert image.format == "JPEG"
        # Pillow's luminance table at quality q is the standard one scaled by (200 - 2q)%: mean 11.5 at 90.
        assert np.mean(image.quantization[0]) >= 20  # quality 85 or lower


def test_cityscapes_difficulty(tmp_path):
    summary = write_cityscapes_dataset(tmp_path, num_images=12)
    frames = [load_cityscapes_arrays(tmp_path, split, frame) for split in ("train", "val")
              for frame in summary["splits"][split]]
    pairs = [(arrays["image"], arrays["train_ids"]) for arrays in frames]
    cityscapes = load_label_map("cityscapes")
    pole, sign, road = (cityscapes.class_names.index(name) for name in ("pole", "traffic sign", "road"))
    fractions = class_fractions(mask for _, mask in pairs)
    assert fractions[pole] < 0.02 and fractions[sign] < 0.02
    pole_parts = [(extent, width) for _, mask in pairs for extent, width in object_parts(mask == pole, background=0)]
    assert any(extent >= 20 and width <= 4 for extent, width in pole_parts)
    assert np.mean([blockiness(image) for image, _ in pairs]) > 1.05  # PNGs that went through JPEG
    assert brightness_variation(pairs, road) > 0.12


def test_a_dataset_written_once_is_reused_untouched_until_its_settings_change(tmp_path):
    first, written = sample_data.write_dataset_once("voc", tmp_path, num_images=4, image_size=(16, 16), seed=1)
    assert written and pathlib.Path(first["root"]).is_dir()
    folder = tmp_path / sample_data.dataset_folder_name("voc", 4, (16, 16), 1)
    assert folder.name == "pascal_voc-4-16x16-seed1" and pathlib.Path(first["root"]).is_relative_to(folder)
    files = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.rglob("*") if path.is_file()}
    again, written = sample_data.write_dataset_once("voc", tmp_path, num_images=4, image_size=(16, 16), seed=1)
    assert not written and again == first
    assert files == {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.rglob("*") if path.is_file()}
    other, written = sample_data.write_dataset_once("voc", tmp_path, num_images=4, image_size=(16, 16), seed=2)
    assert written and other["root"] != first["root"]  # other settings: another folder, the first one kept
    # An interrupted generation (no completion marker) is written again, whole.
    (folder / sample_data.COMPLETE_MARKER).unlink()
    next(folder.rglob("*.jpg")).unlink()
    repaired, written = sample_data.write_dataset_once("voc", tmp_path, num_images=4, image_size=(16, 16), seed=1)
    assert written and repaired == first
    assert {path: path.read_bytes() for path in files} == {path: content for path, (content, _) in files.items()}
