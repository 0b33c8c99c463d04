"""Tests of the tf.train.Example codec in components.core.examples (pure, tiny arrays)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.core import examples, features

ALL_FEATURES = {
    "image/encoded", "image/format", "image/height", "image/width",
    "image/segmentation/class/encoded", "image/segmentation/class/format",
    "image/id", "dataset", "split", "city", "classes_present",
}


def _jpeg_bytes(width: int = 6, height: int = 4) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 90, dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _example(mask: np.ndarray, **overrides) -> examples.SegmentationExample:
    values = dict(example_id="2007_000032", dataset="pascal_voc", split="train", image_encoded=_jpeg_bytes(),
                  image_format="jpeg", height=4, width=6, mask=mask, city="")
    values.update(overrides)
    return examples.SegmentationExample(**values)


MASK = np.array([[0, 0, 15, 15, 255, 255],
                 [0, 5, 15, 15, 255, 255],
                 [0, 5, 5, 20, 20, 255],
                 [0, 0, 0, 20, 20, 0]], dtype=np.uint8)


def test_example_carries_exactly_the_agreed_features_with_the_agreed_types():
    example = examples.to_tf_example(_example(MASK))
    feature_map = example.features.feature
    assert set(feature_map) == ALL_FEATURES
    for name in ("image/height", "image/width", "classes_present"):
        assert feature_map[name].WhichOneof("kind") == "int64_list"
    for name in ALL_FEATURES - {"image/height", "image/width", "classes_present"}:
        assert feature_map[name].WhichOneof("kind") == "bytes_list"
    assert feature_map[features.IMAGE_FORMAT].bytes_list.value == [b"jpeg"]
    assert feature_map[features.MASK_FORMAT].bytes_list.value == [b"png"]
    assert feature_map[features.CITY].bytes_list.value == [b""]
    assert list(feature_map[features.CLASSES_PRESENT].int64_list.value) == [0, 5, 15, 20]


def test_round_trip_keeps_original_image_bytes_and_mask_exactly():
    original = _example(MASK, dataset="cityscapes", city="aachen", example_id="aachen_000000_000019", split="val")
    decoded = examples.from_tf_example(examples.serialize_example(original))
    assert decoded.example.image_encoded == original.image_encoded
    np.testing.assert_array_equal(decoded.example.mask, MASK)
    assert (decoded.example.example_id, decoded.example.dataset, decoded.example.split, decoded.example.city) == (
        "aachen_000000_000019", "cityscapes", "val", "aachen")
    assert (decoded.example.height, decoded.example.width, decoded.example.image_format) == (4, 6, "jpeg")
    assert decoded.classes_present == [0, 5, 15, 20]
    assert decoded.mask_format == "png"


def test_mask_png_is_single_channel_and_tensorflow_reads_the_same_ids():
    encoded = examples.encode_mask_png(MASK)
    with Image.open(io.BytesIO(encoded)) as image:
        assert image.mode == "L"
    np.testing.assert_array_equal(tf.io.decode_png(encoded, channels=1).numpy()[..., 0], MASK)
    np.testing.assert_array_equal(examples.decode_mask_png(encoded), MASK)


def test_classes_present_excludes_ignore_and_may_be_empty():
    assert examples.classes_present(np.array([[3, 1], [255, 3]], dtype=np.uint8)) == [1, 3]
    all_ignored = _example(np.full((4, 6), 255, dtype=np.uint8))
    proto = examples.to_tf_example(all_ignored)
    assert proto.features.feature["classes_present"].WhichOneof("kind") == "int64_list"  # present, empty
    assert examples.from_tf_example(proto).classes_present == []


def test_parsing_feature_spec_parses_a_written_example():
    parsed = tf.io.parse_single_example(examples.serialize_example(_example(MASK)), examples.parsing_feature_spec())
    assert parsed["image/height"].numpy() == 4
    assert parsed["image/id"].numpy() == b"2007_000032"
    assert tf.sparse.to_dense(parsed["classes_present"]).numpy().tolist() == [0, 5, 15, 20]


def test_sniff_image_format():
    assert examples.sniff_image_format(_jpeg_bytes()) == "jpeg"
    assert examples.sniff_image_format(examples.encode_mask_png(MASK)) == "png"
    assert examples.sniff_image_format(b"GIF89a...") is None


@pytest.mark.parametrize("overrides, message", [
    ({"image_format": "gif"}, "image_format must be one of"),
    ({"mask": MASK[:3]}, "mask must be a uint8 array of shape (4, 6)"),
    ({"mask": MASK.astype(np.int32)}, "mask must be a uint8 array"),
])
def test_invalid_examples_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _example(**{"mask": MASK, **overrides})


def test_decoding_names_a_missing_feature():
    example = examples.to_tf_example(_example(MASK))
    del example.features.feature["split"]
    with pytest.raises(ValueError, match="no feature 'split'"):
        examples.from_tf_example(example)
