"""The dataset fingerprint: counts per split, stable for the same files, changed by a resized or removed pair."""

from __future__ import annotations

from components.core.datasets.fingerprint import fingerprint_dataset


def test_fingerprint_counts_each_split_and_is_stable(voc_copy):
    first = fingerprint_dataset("voc", str(voc_copy), ["train", "val"])
    again = fingerprint_dataset("voc", str(voc_copy), ["train", "val"])
    assert first == again and first.name == "pascal_voc"
    assert [split.name for split in first.splits] == ["train", "val"]
    listed = {name: len((voc_copy / "ImageSets" / "Segmentation" / f"{name}.txt").read_text().split())
              for name in ("train", "val")}
    assert {split.name: split.listed for split in first.splits} == listed
    assert first.split("train").source.endswith("train.txt") and len(first.digest) == 16


def test_a_changed_file_size_or_a_removed_pair_changes_the_digest(voc_copy):
    before = fingerprint_dataset("voc", str(voc_copy), ["train", "val"])
    listing = voc_copy / "ImageSets" / "Segmentation" / "val.txt"
    first_id = listing.read_text().split()[0]
    image = voc_copy / "JPEGImages" / f"{first_id}.jpg"
    image.write_bytes(image.read_bytes() + b"\0")
    resized = fingerprint_dataset("voc", str(voc_copy), ["train", "val"])
    assert resized.split("train") == before.split("train")
    assert resized.split("val").digest != before.split("val").digest and resized.digest != before.digest
    listing.write_text("\n".join(listing.read_text().split()[1:]) + "\n")
    shorter = fingerprint_dataset("voc", str(voc_copy), ["train", "val"])
    assert shorter.split("val").listed == before.split("val").listed - 1
