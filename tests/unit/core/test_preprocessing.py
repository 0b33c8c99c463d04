"""Decoding and resizing of images and masks, and the tf.Transform preprocessing_fn's statistics."""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf
from PIL import Image

from components.core import preprocessing


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_masks_resize_with_nearest_neighbour_keeping_ids_and_the_ignore_label():
    mask = np.zeros((4, 4), np.uint8)
    mask[:, 2:] = 7
    mask[0, 0] = 255
    resized = preprocessing.decode_and_resize_mask(tf.constant(_png(mask)), (8, 8)).numpy()
    assert resized.shape == (8, 8) and resized.dtype == np.int64
    assert set(np.unique(resized)) == {0, 7, 255}
    np.testing.assert_array_equal(resized[:, 4:], 7)
    np.testing.assert_array_equal(resized[:2, :2], 255)


def test_images_decode_to_float_rgb_of_the_requested_size():
    image = np.full((10, 6, 3), 200, np.uint8)
    decoded = preprocessing.decode_and_resize_image(tf.constant(_png(image)), (5, 3)).numpy()
    assert decoded.shape == (5, 3, 3) and decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, 200.0)


def test_batches_of_dense_or_sparse_strings_become_vectors():
    dense = tf.constant([[b"a"], [b"b"]])
    sparse = tf.sparse.from_dense(dense)
    for values in (dense, sparse):
        assert preprocessing.to_scalar_strings(values).numpy().tolist() == [b"a", b"b"]


def test_decode_batch_maps_each_example():
    masks = tf.constant([_png(np.full((2, 2), value, np.uint8)) for value in (1, 2, 3)])
    decoded = preprocessing.decode_batch(masks, preprocessing.decode_and_resize_mask, (4, 4), tf.int64, None)
    assert decoded.shape == (3, 4, 4)
    assert decoded.numpy()[:, 0, 0].tolist() == [1, 2, 3]
