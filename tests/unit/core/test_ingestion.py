"""Tests of reading, validating and converting pairs, and of the report, in components.core.ingestion (no Beam).

Real third-party samples (``shared_data``) give known answers: VOC palette masks with 255 regions and
the README's exact pixel counts; the downscaled Cityscapes frame whose mapped labelIds differ from the
provided labelTrainIds on exactly 77 pixels. Generated datasets and hand-broken files cover the rest.
Finding and listing the files is tested with the layouts, in ``tests/unit/core/datasets``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.core import datasets, examples, ingestion
from components.core.datasets.splits import IngestionError, PairCandidate, SkippedSplit
from components.core.label_maps import load_label_map
from tests.support.datasets import first_train_id

VOC_MAP = load_label_map("pascal_voc")
CITYSCAPES_MAP = load_label_map("cityscapes")

# README: class indices present (pixel count) in the three labelme VOC masks.
VOC_SAMPLE_PIXEL_COUNTS = {
    "2011_000003": {0: 125767, 5: 873, 15: 32900, 255: 9460},
    "2011_000006": {0: 93492, 9: 44306, 15: 34791, 18: 14002, 255: 909},
    "2011_000025": {0: 62022, 6: 118222, 7: 7256},
}
VOC_SAMPLE_SIZES = {"2011_000003": (500, 338), "2011_000006": (500, 375), "2011_000025": (500, 375)}


def _candidate(root: Path, example_id: str, split: str = "train") -> PairCandidate:
    return PairCandidate(
        "pascal_voc", split, example_id,
        image_path=str(root / "JPEGImages" / f"{example_id}.jpg"),
        mask_path=str(root / "SegmentationClass" / f"{example_id}.png"))


def _save_png(array: np.ndarray, path: Path, palette: list[int] | None = None) -> None:
    image = Image.fromarray(array)
    if palette is not None:
        image = image.convert("P")
        image.putpalette(palette)
    image.save(path)


# ---------------------------------------------------------------------------------------------------
# Real samples (shared_data)
# ---------------------------------------------------------------------------------------------------

def test_real_voc_palette_masks_keep_classes_and_ignore_exactly(shared_data):
    root = datasets.resolve_dataset_root("voc", str(shared_data / "voc_sample"))
    plan = datasets.plan_split("voc", root, "train")
    assert [c.example_id for c in plan.candidates] == sorted(VOC_SAMPLE_PIXEL_COUNTS)
    for candidate in plan.candidates:
        example = ingestion.load_pair(candidate, VOC_MAP)
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
    example = ingestion.load_pair(candidate, CITYSCAPES_MAP)
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
            ingestion.load_pair(candidate, CITYSCAPES_MAP)


# ---------------------------------------------------------------------------------------------------
# Bad pairs, one kind at a time
# ---------------------------------------------------------------------------------------------------

def _load_error(root: Path, example_id: str) -> tuple[str, str]:
    with pytest.raises(IngestionError) as error:
        ingestion.load_pair(_candidate(root, example_id), VOC_MAP)
    assert str(error.value).startswith(f"{error.value.path}: {error.value.reason}")
    return error.value.path, error.value.reason


def test_missing_files(voc_copy):
    example_id = first_train_id(voc_copy)
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    mask.unlink()
    assert _load_error(voc_copy, example_id) == (str(mask), "mask file not found")
    image = voc_copy / "JPEGImages" / f"{example_id}.jpg"
    image.unlink()
    assert _load_error(voc_copy, example_id) == (str(image), "image file not found")


def test_corrupt_and_truncated_files(voc_copy):
    example_id = first_train_id(voc_copy)
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
    example_id = first_train_id(voc_copy)
    image = voc_copy / "JPEGImages" / f"{example_id}.jpg"
    if encoding != "baseline":
        picture = Image.open(image)
        picture = picture.convert("L") if encoding == "greyscale" else picture
        picture.save(image, format="JPEG", progressive=encoding == "progressive")
    example = ingestion.load_pair(_candidate(voc_copy, example_id), VOC_MAP)
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
    candidate = PairCandidate(dataset=dataset, split="train", example_id="x", image_path="i.png",
                              mask_path="m.png", city="")
    for trial in range(8):
        chosen = rng.choice(valid_values, size=1 + trial, replace=False)
        raw = rng.choice(chosen, size=(37, 53)).astype(np.uint8)
        image = Image.fromarray(raw, mode="L")
        if mode == "P":
            image = image.convert("P")
            image.putpalette(label_map.palette() if dataset == "pascal_voc" else list(range(256)) * 3)
            image.frombytes(raw.tobytes())
        train_ids, present = ingestion.mask_to_train_ids(image, label_map, "m.png", candidate)
        np.testing.assert_array_equal(train_ids, label_map.id_to_train_id[raw])
        assert present == examples.classes_present(label_map.id_to_train_id[raw])


def test_mask_size_must_match_image_size(voc_copy):
    example_id = first_train_id(voc_copy)
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    _save_png(np.zeros((10, 12), dtype=np.uint8), mask, VOC_MAP.palette())
    image = voc_copy / "JPEGImages" / f"{example_id}.jpg"
    assert _load_error(voc_copy, example_id) == (
        str(mask), f"mask size 12x10 differs from image size 32x24 ({image})")


def test_mask_values_must_be_label_ids_or_ignore(voc_copy, tmp_path):
    example_id = first_train_id(voc_copy)
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    values = np.zeros((24, 32), dtype=np.uint8)
    values[0, :3] = [21, 37, 254]
    values[1, 0] = 255
    _save_png(values, mask, VOC_MAP.palette())
    assert _load_error(voc_copy, example_id) == (
        str(mask), "mask value(s) 21, 37, 254 are neither label ids of pascal_voc (0-20) nor the ignore label 255")
    cityscapes_candidate = PairCandidate(
        "cityscapes", "val", "x_000000_000000", image_path=str(voc_copy / "JPEGImages" / f"{example_id}.jpg"),
        mask_path=str(tmp_path / "labelIds.png"), city="x")
    values[0, :3] = [33, 34, 7]
    _save_png(values, tmp_path / "labelIds.png")
    with pytest.raises(IngestionError, match=r"mask value\(s\) 34 are neither label ids of cityscapes \(0-33\)"):
        ingestion.load_pair(cityscapes_candidate, CITYSCAPES_MAP)


def test_rgb_voc_masks_are_decoded_by_the_colour_map(voc_copy):
    example_id = first_train_id(voc_copy)
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    indices = np.array(Image.open(mask))
    _save_png(VOC_MAP.colorize(indices), mask)
    assert Image.open(mask).mode == "RGB"
    np.testing.assert_array_equal(ingestion.load_pair(_candidate(voc_copy, example_id), VOC_MAP).mask, indices)

    colours = VOC_MAP.colorize(indices)
    colours[0, 0] = (1, 2, 3)
    _save_png(colours, mask)
    assert _load_error(voc_copy, example_id) == (
        str(mask), "RGB mask: colour(s) not in the pascal_voc label map: (1, 2, 3)")


def test_unsupported_modes_are_refused(voc_copy):
    example_id = first_train_id(voc_copy)
    mask = voc_copy / "SegmentationClass" / f"{example_id}.png"
    Image.fromarray(np.zeros((24, 32), dtype=np.uint16)).save(mask)
    path, reason = _load_error(voc_copy, example_id)
    assert (path, reason.split(" (")[0]) == (str(mask), "unsupported mask mode 'I;16'")
    image = voc_copy / "JPEGImages" / f"{example_id}.jpg"
    Image.new("CMYK", (32, 24)).save(image, format="JPEG")
    path, reason = _load_error(voc_copy, example_id)
    assert (path, reason) == (str(image), "unsupported image mode 'CMYK' (expected RGB or greyscale)")


def test_a_valid_generated_pair_converts_to_the_generated_mask(voc_copy):
    example_id = first_train_id(voc_copy)
    example = ingestion.load_pair(_candidate(voc_copy, example_id), VOC_MAP)
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
    report = ingestion.build_report(
        "voc", "/d",
        [ingestion.SplitOutcome("train", "/d/train.txt", listed=5, written=3, quarantined=(bad, worse)),
         ingestion.SplitOutcome("val", "/d/val.txt", listed=0, written=0)],
        skipped=[SkippedSplit("test", "no labels")])
    assert report["splits"] == {
        "train": {"source": "/d/train.txt", "listed": 5, "written": 3, "quarantined": 2, "empty": False},
        "val": {"source": "/d/val.txt", "listed": 0, "written": 0, "quarantined": 0, "empty": True},
    }
    assert report["quarantine"] == [worse, bad]
    assert report["totals"] == {"listed": 5, "written": 3, "quarantined": 2, "overlapping_ids": 0}
    assert report["reconciled"] is True
    assert report["warnings"] == ["split 'val' is empty: nothing listed in /d/val.txt",
                                  "split 'test' skipped: no labels"]
    assert report["skipped_splits"] == [{"split": "test", "reason": "no labels"}]
    broken = ingestion.build_report("voc", "/d", [ingestion.SplitOutcome("train", "/d/train.txt", 5, 4)])
    assert broken["reconciled"] is False


def test_ingestion_errors_survive_pickling_and_records():
    import pickle

    error = IngestionError("/d/m.png", "mask file not found", split="train", example_id="x")
    assert str(error) == "/d/m.png: mask file not found (split 'train', id 'x')"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.reason, copy.split, copy.example_id) == ("/d/m.png", "mask file not found", "train", "x")
    candidate = PairCandidate("pascal_voc", "train", "x", "/d/x.jpg", "/d/m.png")
    record = ingestion.quarantine_record(error, candidate)
    assert str(ingestion.error_from_record(record)) == str(error)
