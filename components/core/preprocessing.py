"""TensorFlow ops that turn encoded images and masks into model inputs and targets.

Used inside tf.Transform's `preprocessing_fn` (so that they are embedded in the exported model) and
directly by tests. Images keep their colours and are resized bilinearly; masks are class-index PNGs
resized with nearest neighbour, so that no interpolated, non-existent class id ever appears and the
ignore label (255) stays 255.
"""

from __future__ import annotations

import tensorflow as tf


def to_scalar_strings(values) -> tf.Tensor:
    """Turns a batch of one-string-per-example features (dense [B, 1], [B] or sparse) into [B]."""
    if isinstance(values, tf.SparseTensor):
        values = tf.sparse.to_dense(values, default_value="")
    elif isinstance(values, tf.RaggedTensor):
        values = values.to_tensor(default_value="")
    return tf.reshape(values, [-1])


def decode_and_resize_image(encoded: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Decodes one JPEG/PNG image to float32 RGB in [0, 255], resized bilinearly to `size` (h, w)."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear")
    return tf.ensure_shape(image, [size[0], size[1], 3])


def decode_and_resize_mask(encoded: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Decodes one single-channel class-index PNG to int64 ids, resized with nearest neighbour."""
    mask = tf.io.decode_png(encoded, channels=1)
    mask = tf.image.resize(mask, size, method="nearest")
    return tf.ensure_shape(tf.cast(mask[..., 0], tf.int64), [size[0], size[1]])


def decode_batch(encoded: tf.Tensor, decode_fn, size: tuple[int, int], dtype: tf.DType, channels: int | None):
    """Applies a per-example decode function to a [B] batch of encoded strings."""
    shape = [size[0], size[1]] + ([channels] if channels else [])
    return tf.map_fn(lambda value: decode_fn(value, size), encoded,
                     fn_output_signature=tf.TensorSpec(shape, dtype))


SIZE_BUCKET_EDGES = (256, 512, 1024)


def size_bucket(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Buckets images by their longer side: "le256", "le512", "le1024" or "gt1024" (a [B] string tensor)."""
    longer = tf.maximum(tf.reshape(tf.cast(height, tf.int64), [-1]), tf.reshape(tf.cast(width, tf.int64), [-1]))
    names = tf.constant([f"le{edge}" for edge in SIZE_BUCKET_EDGES] + [f"gt{SIZE_BUCKET_EDGES[-1]}"])
    index = tf.searchsorted(tf.constant(SIZE_BUCKET_EDGES, tf.int64), longer, side="left")
    return tf.gather(names, index)
