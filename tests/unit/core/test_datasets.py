"""Tests of file discovery, pairing and validation in components.core.datasets (no Beam).

Real third-party samples (``shared_data``) give known answers: VOC palette masks with 255 regions and
the README's exact pixel counts; the downscaled Cityscapes frame whose mapped labelIds differ from the
provided labelTrainIds on exactly 77 pixels. Generated datasets and hand-broken files cover the rest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.core import datasets, examples, sample_data
from components.core.datasets import IngestionError
from components.core.label_maps import load_label_map

VOC_MAP = load_label_map("pascal_voc")
CITYSCAPES_MAP = load_label_map("cityscapes")

# README: class indices present (pixel count) in the three labelme VOC masks.
VOC_SAMPLE_PIXEL_COUNTS = {
    "2011_000003": {0: 125767, 5: 873, 15: 32900, 255: 9460},
    "2011_000006": {0: 93492, 9: 44306, 15: 34791, 18: 14002, 255: 909},
    "2011_000025": {0: 62022, 6: 118222, 7: 7256},
}
VOC_SAMPLE_SIZES = {"2011_000003": (500, 338), "2011_000006": (500, 375), "2011_000025": (500, 375)}


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory) -> Path:
    """A small generated VOC dataset (folder holding VOCdevkit); tests copy it before changing it."""
    out = tmp_path_factory.mktemp("voc")
    sample_data.write_voc_dataset(out, num_images=4, size=(32, 24), seed=1)
    return out


@pytest.fixture()
def voc_copy(voc_dir, tmp_path) -> Path:
    """A private copy of the generated VOC dataset's VOC2012 root."""
    shutil.copytree(voc_dir, tmp_path / "voc")
    return tmp_path / "voc" / "VOCdevkit" / "VOC2012"


@pytest.fixture(scope="module")
def cityscapes_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cityscapes")
    sample_data.write_cityscapes_dataset(out, num_images=3, size=(32, 16), seed=1)
    return out


def _candidate(root: Path, example_id: str, split: str = "train") -> datasets.PairCandidate:
    return datasets.PairCandidate(
        "pascal_voc", split, example_id,
        image_path=str(root / "JPEGImages" / f"{example_id}.jpg"),
        mask_path=str(root / "SegmentationClass" / f"{example_id}.png"))


def _first_id(root: Path) -> str:
    return (root / "ImageSets" / "Segmentation" / "train.txt").read_text().split()[0]


def _save_png(array: np.ndarray, path: Path, palette: list[int] | None = None) -> None:
    image = Image.fromarray(array)
    if palette is not None:
        image = image.convert("P")
        image.putpalette(palette)
    image.save(path)


# ---------------------------------------------------------------------------------------------------
# Layout detection
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("given", ["", "VOCdevkit", "VOCdevkit/VOC2012"])
def test_voc_root_is_found_from_parent_vocdevkit_or_voc2012(voc_dir, given):
    assert datasets.resolve_dataset_root("voc", str(voc_dir / given)) == str(voc_dir / "VOCdevkit" / "VOC2012")


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
    assert skipped == [datasets.SkippedSplit("test", "the Cityscapes test split has no usable labels "
                                                     "(its public gtFine masks are blank)")]
    assert datasets.partition_splits("voc", ["test"]) == (["test"], [])
    for bad in (["../train"], ["train", "train"], [], "train"):
        with pytest.raises(ValueError):
            datasets.partition_splits("voc", bad)


# ---------------------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------------------

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
    good = _first_id(voc_copy)
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


def test_an_empty_split_is_listed_empty_or_refused_in_strict_mode(voc_copy):
    (voc_copy / "ImageSets" / "Segmentation" / "val.txt").write_text("")
    assert datasets.plan_split("voc", str(voc_copy), "val").listed == 0
    with pytest.raises(IngestionError, match="split 'val' is empty: nothing listed in"):
        datasets.plan_split("voc", str(voc_copy), "val", strict=True)


def test_train_aug_reads_masks_from_segmentation_class_aug_when_present(voc_copy):
    ids = _first_id(voc_copy)
    (voc_copy / "ImageSets" / "Segmentation" / "train_aug.txt").write_text(ids + "\n")
    assert datasets.plan_split("voc", str(voc_copy), "train_aug").candidates[0].mask_path.endswith(
        f"SegmentationClass/{ids}.png")
    (voc_copy / "SegmentationClassAug").mkdir()
    assert datasets.plan_split("voc", str(voc_copy), "train_aug").candidates[0].mask_path == str(
        voc_copy / "SegmentationClassAug" / f"{ids}.png")


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
            datasets.load_pair(candidate, label_map)
        outcomes[candidate.example_id] = (error.value.path, error.value.reason)
    assert outcomes == {
        image.name[: -len("_leftImg8bit.png")]: (str(mask), "mask file not found"),
        "zurich_000099_000019": (str(image.parent / "zurich_000099_000019_leftImg8bit.png"), "image file not found"),
    }


# ---------------------------------------------------------------------------------------------------
# Real samples (shared_data)
# ---------------------------------------------------------------------------------------------------

def test_real_voc_palette_masks_keep_classes_and_ignore_exactly(shared_data):
    root = datasets.resolve_dataset_root("voc", str(shared_data / "voc_sample"))
    plan = datasets.plan_split("voc", root, "train")
    assert [c.example_id for c in plan.candidates] == sorted(VOC_SAMPLE_PIXEL_COUNTS)
    for candidate in plan.candidates:
        example = datasets.load_pair(candidate, VOC_MAP)
        values, counts = np.unique(example.mask, return_counts=True)
        assert dict(zip(values.tolist(), counts.tolist())) == VOC_SAMPLE_PIXEL_COUNTS[candidate.example_id]
        assert (example.width, example.height) == VOC_SAMPLE_SIZES[candidate.example_id]
        assert example.image_encoded == Path(candidate.image_path).read_bytes()
        assert example.image_format == "jpeg"
        assert example.classes_present == sorted(set(VOC_SAMPLE_PIXEL_COUNTS[candidate.example_id]) - {255})
    assert datasets.plan_split("voc", root, "val").listed == 0


def test_real_cityscapes_frame_maps_label_ids_like_the_official_train_ids_but_77_pixels(shared_data):
    root = datasets.resolve_dataset_root("cityscapes", str(shared_data / "cityscapes_sample"))
    (candidate,) = datasets.plan_split("cityscapes", root, "val").candidates
    assert (candidate.example_id, candidate.city) == ("frankfurt_000000_000294", "frankfurt")
    example = datasets.load_pair(candidate, CITYSCAPES_MAP)
    provided = np.array(Image.open(candidate.mask_path.replace("_labelIds", "_labelTrainIds")))
    assert example.mask.shape == provided.shape == (128, 256)
    assert int((example.mask != provided).sum()) == 77
    assert example.classes_present == [0, 1, 2, 4, 5, 7, 8, 10, 11, 13]
    assert (example.image_format, example.city) == ("png", "frankfurt")


def test_real_full_resolution_frames_without_label_ids_are_refused(shared_data):
    root = datasets.resolve_dataset_root("cityscapes", str(shared_data / "cityscapes_fullres_sample"))
    plan = datasets.plan_split("cityscapes", root, "val")
    assert plan.listed == 3
    for candidate in plan.candidates:
        with pytest.raises(IngestionError, match="gtFine_labelIds.png: mask file not found"):
            datasets.load_pair(candidate, CITYSCAPES_MAP)


# ---------------------------------------------------------------------------------------------------
# Bad pairs, one kind at a time
# ---------------------------------------------------------------------------------------------------

def _load_error(root: Path, example_id: str) -> tuple[str, str]:
    with pytest.raises(IngestionError) as error:
        datasets.load_pair(_candidate(root, example_id), VOC_MAP)
    assert str(error.value).startswith(f"{error.value.path}: {error.value.reason}")
    return error.value.path, error.value.reason


def test_missing_files(voc_copy):
    example_id = _first_id(voc_copy)
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    mask.unlink()
    assert _load_error(voc_copy, example_id) == (str(mask), "mask file not found")
    image = voc_copy / "JPEGImages" / f"{example_id}.jpg"
    image.unlink()
    assert _load_error(voc_copy, example_id) == (str(image), "image file not found")


def test_corrupt_and_truncated_files(voc_copy):
    example_id = _first_id(voc_copy)
    image = voc_copy / "JPEGImages" / f"{example_id}.jpg"
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    original_image = image.read_bytes()
    image.write_bytes(b"this is not a picture")
    assert _load_error(voc_copy, example_id) == (str(image), "image is not a JPEG or PNG file")
    image.write_bytes(original_image[: len(original_image) // 2])
    path, reason = _load_error(voc_copy, example_id)
    assert (path, reason.split(" (")[0]) == (str(image), "corrupt or truncated image")
    image.write_bytes(original_image)
    original_mask = mask.read_bytes()
    mask.write_bytes(original_mask[: len(original_mask) // 2])
    path, reason = _load_error(voc_copy, example_id)
    assert (path, reason.split(" (")[0]) == (str(mask), "corrupt or truncated mask")
    mask.write_bytes(original_image)
    assert _load_error(voc_copy, example_id) == (str(mask), "mask is JPEG, not a lossless PNG")


@pytest.mark.parametrize("kept_fraction", [0.97, 0.75, 0.25])
@pytest.mark.parametrize("encoding", ["baseline", "progressive", "greyscale"])
def test_jpeg_truncation_is_caught_by_the_reduced_scale_decode(voc_copy, kept_fraction, encoding):
    """Images are validated at 1/8 scale: every block is still entropy-decoded, so a cut file fails."""
    example_id = _first_id(voc_copy)
    image = voc_copy / "JPEGImages" / f"{example_id}.jpg"
    if encoding != "baseline":
        picture = Image.open(image)
        picture = picture.convert("L") if encoding == "greyscale" else picture
        picture.save(image, format="JPEG", progressive=encoding == "progressive")
    example = datasets.load_pair(_candidate(voc_copy, example_id), VOC_MAP)
    assert (example.width, example.height) == Image.open(image).size  # full size, not the 1/8 decode
    original = image.read_bytes()
    image.write_bytes(original[: int(len(original) * kept_fraction)])
    path, reason = _load_error(voc_copy, example_id)
    assert (path, reason.split(" (")[0]) == (str(image), "corrupt or truncated image")


@pytest.mark.parametrize("mode", ["P", "L"])
@pytest.mark.parametrize("dataset", ["pascal_voc", "cityscapes"])
def test_mask_conversion_matches_the_lookup_table_and_counts_classes(dataset, mode):
    """Fast paths (Pillow histogram, identity skip, OpenCV lookup) equal the plain table lookup."""
    label_map = load_label_map(dataset)
    valid_values = np.flatnonzero(label_map.valid_raw_values)
    rng = np.random.default_rng(3)
    candidate = datasets.PairCandidate(dataset=dataset, split="train", example_id="x", image_path="i.png",
                                       mask_path="m.png", city="")
    for trial in range(8):
        chosen = rng.choice(valid_values, size=1 + trial, replace=False)
        raw = rng.choice(chosen, size=(37, 53)).astype(np.uint8)
        image = Image.fromarray(raw, mode="L")
        if mode == "P":
            image = image.convert("P")
            image.putpalette(label_map.palette() if dataset == "pascal_voc" else list(range(256)) * 3)
            image.frombytes(raw.tobytes())
        train_ids, present = datasets.mask_to_train_ids(image, label_map, "m.png", candidate)
        np.testing.assert_array_equal(train_ids, label_map.id_to_train_id[raw])
        assert present == examples.classes_present(label_map.id_to_train_id[raw])


def test_mask_size_must_match_image_size(voc_copy):
    example_id = _first_id(voc_copy)
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    _save_png(np.zeros((10, 12), dtype=np.uint8), mask, VOC_MAP.palette())
    image = voc_copy / "JPEGImages" / f"{example_id}.jpg"
    assert _load_error(voc_copy, example_id) == (
        str(mask), f"mask size 12x10 differs from image size 32x24 ({image})")


def test_mask_values_must_be_label_ids_or_ignore(voc_copy, tmp_path):
    example_id = _first_id(voc_copy)
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    values = np.zeros((24, 32), dtype=np.uint8)
    values[0, :3] = [21, 37, 254]
    values[1, 0] = 255
    _save_png(values, mask, VOC_MAP.palette())
    assert _load_error(voc_copy, example_id) == (
        str(mask), "mask value(s) 21, 37, 254 are neither label ids of pascal_voc (0-20) nor the ignore label 255")
    cityscapes_candidate = datasets.PairCandidate(
        "cityscapes", "val", "x_000000_000000", image_path=str(voc_copy / "JPEGImages" / f"{example_id}.jpg"),
        mask_path=str(tmp_path / "labelIds.png"), city="x")
    values[0, :3] = [33, 34, 7]
    _save_png(values, tmp_path / "labelIds.png")
    with pytest.raises(IngestionError, match=r"mask value\(s\) 34 are neither label ids of cityscapes \(0-33\)"):
        datasets.load_pair(cityscapes_candidate, CITYSCAPES_MAP)


def test_rgb_voc_masks_are_decoded_by_the_colour_map(voc_copy):
    example_id = _first_id(voc_copy)
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    indices = np.array(Image.open(mask))
    _save_png(VOC_MAP.colorize(indices), mask)
    assert Image.open(mask).mode == "RGB"
    np.testing.assert_array_equal(datasets.load_pair(_candidate(voc_copy, example_id), VOC_MAP).mask, indices)

    colours = VOC_MAP.colorize(indices)
    colours[0, 0] = (1, 2, 3)
    _save_png(colours, mask)
    assert _load_error(voc_copy, example_id) == (
        str(mask), "RGB mask: colour(s) not in the pascal_voc label map: (1, 2, 3)")


def test_unsupported_modes_are_refused(voc_copy):
    example_id = _first_id(voc_copy)
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    Image.fromarray(np.zeros((24, 32), dtype=np.uint16)).save(mask)
    path, reason = _load_error(voc_copy, example_id)
    assert (path, reason.split(" (")[0]) == (str(mask), "unsupported mask mode 'I;16'")
    image = voc_copy / "JPEGImages" / f"{example_id}.jpg"
    Image.new("CMYK", (32, 24)).save(image, format="JPEG")
    path, reason = _load_error(voc_copy, example_id)
    assert (path, reason) == (str(image), "unsupported image mode 'CMYK' (expected RGB or greyscale)")


def test_a_valid_generated_pair_converts_to_the_generated_mask(voc_copy):
    example_id = _first_id(voc_copy)
    example = datasets.load_pair(_candidate(voc_copy, example_id), VOC_MAP)
    expected_mask = np.array(Image.open(voc_copy / "SegmentationClass" / f"{example_id}.png"))
    np.testing.assert_array_equal(example.mask, expected_mask)
    decoded = examples.from_tf_example(examples.serialize_example(example))
    assert decoded.example.image_encoded == (voc_copy / "JPEGImages" / f"{example_id}.jpg").read_bytes()


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------

def test_report_reconciles_and_sorts_quarantine():
    bad = {"split": "train", "id": "b", "file": "/d/b.png", "reason": "mask file not found"}
    worse = {"split": "train", "id": "a", "file": "/d/a.jpg", "reason": "image file not found"}
    report = datasets.build_report(
        "voc", "/d",
        [datasets.SplitOutcome("train", "/d/train.txt", listed=5, written=3, quarantined=(bad, worse)),
         datasets.SplitOutcome("val", "/d/val.txt", listed=0, written=0)],
        skipped=[datasets.SkippedSplit("test", "no labels")])
    assert report["splits"] == {
        "train": {"source": "/d/train.txt", "listed": 5, "written": 3, "quarantined": 2, "empty": False},
        "val": {"source": "/d/val.txt", "listed": 0, "written": 0, "quarantined": 0, "empty": True},
    }
    assert report["quarantine"] == [worse, bad]
    assert report["totals"] == {"listed": 5, "written": 3, "quarantined": 2}
    assert report["reconciled"] is True
    assert report["warnings"] == ["split 'val' is empty: nothing listed in /d/val.txt",
                                  "split 'test' skipped: no labels"]
    assert report["skipped_splits"] == [{"split": "test", "reason": "no labels"}]
    broken = datasets.build_report("voc", "/d", [datasets.SplitOutcome("train", "/d/train.txt", 5, 4)])
    assert broken["reconciled"] is False


def test_ingestion_errors_survive_pickling_and_records():
    import pickle

    error = IngestionError("/d/m.png", "mask file not found", split="train", example_id="x")
    assert str(error) == "/d/m.png: mask file not found (split 'train', id 'x')"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.reason, copy.split, copy.example_id) == ("/d/m.png", "mask file not found", "train", "x")
    candidate = datasets.PairCandidate("pascal_voc", "train", "x", "/d/x.jpg", "/d/m.png")
    record = datasets.quarantine_record(error, candidate)
    assert str(datasets.error_from_record(record)) == str(error)
