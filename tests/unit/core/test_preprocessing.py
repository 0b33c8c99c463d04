"""Decoding and resizing of image/mask pairs ("fit" keeps the aspect ratio and pads, "fill" keeps it and
crops the centre, "stretch" does not), mapping predictions back onto the image,
the per-class pixel counts and the class-weight formulas, against numpy."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.core import preprocessing
from tests.support.class_weights import numpy_class_weights


def _encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def _pair(height: int, width: int, fmt: str = "PNG"):
    image = np.full((height, width, 3), 200, np.uint8)
    mask = np.zeros((height, width), np.uint8)
    mask[:, width // 2:] = 7
    mask[0, 0] = 255
    return tf.constant(_encoded(image, fmt)), tf.constant(_encoded(mask))


def _decode_pair(image, mask, size, mode):
    decoded_image, content = preprocessing.decode_and_resize_image(image, size, mode)
    return decoded_image, preprocessing.decode_and_resize_mask(mask, size, mode), content


def test_stretch_resizes_masks_with_nearest_neighbour_keeping_ids_and_the_ignore_label():
    image, mask = _pair(4, 4)
    decoded_image, resized, content = _decode_pair(image, mask, (8, 8), "stretch")
    resized = resized.numpy()
    assert resized.shape == (8, 8) and resized.dtype == np.int64
    assert set(np.unique(resized)) == {0, 7, 255}
    np.testing.assert_array_equal(resized[:, 4:], 7)
    np.testing.assert_array_equal(resized[:2, :2], 255)
    assert decoded_image.shape == (8, 8, 3) and decoded_image.dtype == tf.float32
    np.testing.assert_allclose(decoded_image.numpy(), 200.0)
    assert content.numpy().tolist() == [8, 8]


@pytest.mark.parametrize("height, width, size, expected", [
    (375, 500, (64, 64), (48, 64)),     # VOC landscape: the longer side fills the input
    (500, 333, (64, 64), (64, 43)),     # portrait
    (1024, 2048, (64, 128), (64, 128)),  # Cityscapes at its own aspect ratio: no padding
    (10, 1000, (32, 32), (1, 32)),      # extreme: never below one pixel
    (16, 16, (32, 32), (32, 32)),       # upscaling
])
def test_fit_keeps_the_aspect_ratio_within_one_pixel(height, width, size, expected):
    content = preprocessing.content_size(tf.constant(height), tf.constant(width), size, "fit").numpy()
    assert tuple(content) == expected
    assert content[0] <= size[0] and content[1] <= size[1]
    if min(content) > 1:
        assert abs(content[1] - content[0] * width / height) <= 1.0


def test_fit_pads_the_mask_with_the_ignore_label_and_the_image_with_zeros_bottom_right():
    image, mask = _pair(30, 60, fmt="JPEG")
    decoded_image, resized, content = _decode_pair(image, mask, (32, 32), "fit")
    rows, cols = content.numpy()
    assert (rows, cols) == (16, 32)
    resized, decoded_image = resized.numpy(), decoded_image.numpy()
    np.testing.assert_array_equal(resized[rows:], 255)
    np.testing.assert_array_equal(decoded_image[rows:], 0.0)
    assert set(np.unique(resized[:rows])) == {0, 7, 255}
    np.testing.assert_array_equal(resized[:rows, 16:], 7)
    assert np.abs(decoded_image[:rows] - 200.0).max() < 4  # JPEG


@pytest.mark.parametrize("height, width, size, expected", [
    (375, 500, (64, 64), (64, 85)),      # VOC landscape: the shorter side fills the input
    (500, 333, (64, 64), (96, 64)),      # portrait
    (1024, 2048, (64, 128), (64, 128)),  # Cityscapes at its own aspect ratio: nothing cropped
    (16, 16, (32, 32), (32, 32)),        # upscaling
])
def test_fill_keeps_the_aspect_ratio_and_covers_the_input(height, width, size, expected):
    content = preprocessing.content_size(tf.constant(height), tf.constant(width), size, "fill").numpy()
    assert tuple(content) == expected
    assert content[0] >= size[0] and content[1] >= size[1] and (content == size).any()
    assert abs(content[1] - content[0] * width / height) <= 1.0


def test_fill_crops_the_centre_of_image_and_mask_alike():
    # A 10 x 40 image whose columns encode their own index, scaled to 8 x 32 and cropped to its centre 8 x 8.
    columns = np.tile(np.arange(40, dtype=np.uint8) * 6, (10, 1))
    image = tf.io.encode_png(np.repeat(columns[..., None], 3, axis=-1))
    mask = tf.io.encode_png((np.tile(np.arange(40, dtype=np.uint8) // 4, (10, 1)))[..., None])
    decoded_image, resized, content = _decode_pair(image, mask, (8, 8), "fill")
    assert content.numpy().tolist() == [8, 32]
    resized = resized.numpy()
    assert (resized != 255).all()  # nothing padded: the image covers the input
    # The centre 8 of the 32 scaled columns (12..19); nearest neighbour (half-pixel centres) reads
    # original column floor((j + 0.5) * 40 / 32), whose class is column // 4.
    expected = np.floor((np.arange(12, 20) + 0.5) * 40 / 32).astype(int) // 4
    assert resized[0].tolist() == expected.tolist()
    np.testing.assert_array_equal(resized, resized[:1].repeat(8, axis=0))
    first, last = decoded_image.numpy()[0, 0, 0], decoded_image.numpy()[0, -1, 0]
    assert 14 * 6 <= first <= 17 * 6 and 22 * 6 <= last <= 25 * 6


@pytest.mark.parametrize("mode", preprocessing.RESIZE_MODES)
@pytest.mark.parametrize("height, width", [(30, 60), (60, 30), (17, 17)])
def test_a_prediction_maps_back_onto_the_image_as_its_mask_was_mapped_in(mode, height, width):
    """Resizing a mask into the input and mapping it back with the metrics' rule (numpy) and the serving
    rule (TensorFlow) gives the same map, equal to the mask wherever the model saw the pixel."""
    from components.core.metrics import prediction_at_image_size

    mask = np.ones((height, width), np.uint8)  # four quadrants, classes 1 to 4
    mask[height // 2:] += 1
    mask[:, width // 2:] += 2
    image = np.zeros((height, width, 3), np.uint8)
    size = (16, 16)
    _, resized, content = _decode_pair(tf.io.encode_png(image), tf.io.encode_png(mask[..., None]), size, mode)
    mapped = prediction_at_image_size(resized.numpy(), content.numpy(), (height, width))
    rows, cols = preprocessing.input_indices_of_content(content, size)
    scaled = tf.gather(tf.gather(resized, rows, axis=0), cols, axis=1)
    served = tf.image.resize(scaled[..., None], (height, width), method="nearest")[..., 0].numpy()
    np.testing.assert_array_equal(mapped, served)
    assert (mapped != 255).all()
    agreement = (mapped == mask).mean()
    assert agreement > 0.9  # off only along the quadrants' borders (the input is 16 x 16)


def test_pairs_decode_in_batches_whatever_their_sizes():
    pairs = [_pair(h, w) for h, w in ((4, 8), (8, 4), (6, 6))]
    images, contents = preprocessing.decode_and_resize_images(tf.stack([image for image, _ in pairs]), (8, 8), "fit")
    masks = preprocessing.decode_and_resize_masks(tf.stack([mask for _, mask in pairs]), (8, 8), "fit")
    assert images.shape == (3, 8, 8, 3) and masks.shape == (3, 8, 8)
    assert contents.numpy().tolist() == [[4, 8], [8, 4], [8, 8]]
    covered = preprocessing.content_masks(contents, (8, 8)).numpy()
    assert covered[0].sum() == 32 and covered[1].sum() == 32 and covered[2].all()
    assert (masks.numpy()[~covered] == 255).all()


def test_unknown_resize_mode_is_refused():
    with pytest.raises(ValueError, match="unknown resize mode 'crop'"):
        preprocessing.content_size(tf.constant(4), tf.constant(4), (8, 8), "crop")


def test_batches_of_dense_or_sparse_strings_become_vectors():
    dense = tf.constant([[b"a"], [b"b"]])
    sparse = tf.sparse.from_dense(dense)
    for values in (dense, sparse):
        assert preprocessing.to_scalar_strings(values).numpy().tolist() == [b"a", b"b"]


def test_class_pixel_counts_leave_out_the_ignore_label():
    masks = np.array([[[0, 1], [1, 255]], [[2, 2], [2, 2]]], np.int64)
    counts = preprocessing.class_pixel_counts(tf.constant(masks), num_classes=4).numpy()
    assert counts.tolist() == [[1, 2, 0, 0], [0, 0, 4, 0]]


@pytest.mark.parametrize("weighting", preprocessing.CLASS_WEIGHTINGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_weights_follow_their_formulas(weighting, seed):
    rng = np.random.default_rng(seed)
    num_classes = 6
    masks = [rng.choice([0, 1, 1, 2, 4, 4, 4, 255], size=(5, 7)) for _ in range(3 + seed)]
    masks[0][:2] = 3  # class 3 only in the first image; class 5 never
    counts = preprocessing.class_pixel_counts(tf.constant(np.stack(masks)), num_classes)
    per_image = tf.reduce_sum(counts, axis=1, keepdims=True)
    presence = tf.reduce_sum(tf.where(counts > 0, per_image, 0), axis=0)
    weights = preprocessing.class_weights(tf.reduce_sum(counts, axis=0), presence, weighting).numpy()
    np.testing.assert_allclose(weights, numpy_class_weights(masks, num_classes, weighting), rtol=1e-6)
    assert weights[5] == 0.0


def test_median_of_an_even_count_averages_the_middle_pair():
    counts = tf.constant([10, 20, 0, 40, 80], tf.int64)
    presence = tf.constant([100] * 5, tf.int64)
    weights = preprocessing.class_weights(counts, presence, "median_frequency").numpy()
    median = np.median([0.1, 0.2, 0.4, 0.8])
    np.testing.assert_allclose(weights, [median / 0.1, median / 0.2, 0, median / 0.4, median / 0.8], rtol=1e-6)


def test_a_missing_mask_is_all_ignore_label_as_a_serving_request_gets():
    mask = preprocessing.decode_and_resize_mask(tf.constant(b""), (4, 6), "fit").numpy()
    assert mask.shape == (4, 6) and (mask == 255).all()


def test_the_config_knows_every_preprocessing_option():
    from components.core import config

    assert config.RESIZE_MODES == preprocessing.RESIZE_MODES
    assert config.NORMALIZATIONS == preprocessing.NORMALIZATIONS
    assert config.CLASS_WEIGHTINGS == ("none", *preprocessing.CLASS_WEIGHTINGS)
