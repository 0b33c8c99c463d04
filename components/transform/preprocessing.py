"""tf.Transform `preprocessing_fn`: the preprocessing that is embedded in the exported model.

Decodes each example's image and class mask, resizes both to the model's input size (bilinear for
images, nearest for masks) and standardises the image with per-channel mean and standard deviation
computed by tf.Transform analyzers over the whole training split. It also buckets the original image
size, a feature for evaluation slices.

`custom_config` (from the Transform component) carries `{"image_size": [height, width]}`.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from components.core import features, preprocessing


def preprocessing_fn(inputs, custom_config):
    """Maps raw ingestion features to the transformed features `image` and `mask`.

    Args:
        inputs: a batch of raw features keyed by name (see `components.core.features`).
        custom_config: dict with `image_size` = [height, width].

    Returns:
        `image`: float32 [B, H, W, 3], standardised per channel with dataset statistics;
        `mask`: int64 [B, H, W] of class ids, 255 = ignore;
        `size_bucket`: string [B], the original image's longer side bucketed (an evaluation slice).
    """
    size = tuple(custom_config["image_size"])
    images = preprocessing.decode_batch(
        preprocessing.to_scalar_strings(inputs[features.IMAGE_ENCODED]),
        preprocessing.decode_and_resize_image, size, tf.float32, channels=3)
    masks = preprocessing.decode_batch(
        preprocessing.to_scalar_strings(inputs[features.MASK_ENCODED]),
        preprocessing.decode_and_resize_mask, size, tf.int64, channels=None)
    pixels = tf.reshape(images, [-1, 3])
    channel_mean = tft.mean(pixels, reduce_instance_dims=False)
    channel_std = tf.sqrt(tft.var(pixels, reduce_instance_dims=False))
    standardised = (images - channel_mean) / tf.maximum(channel_std, 1e-3)
    bucket = preprocessing.size_bucket(_dense(inputs[features.IMAGE_HEIGHT]), _dense(inputs[features.IMAGE_WIDTH]))
    batch = tf.shape(images)[0]
    return {features.IMAGE: standardised, features.MASK: masks, features.SIZE_BUCKET: bucket,
            features.NORMALIZATION_MEAN: tf.broadcast_to(channel_mean, [batch, 3]),
            features.NORMALIZATION_STD: tf.broadcast_to(tf.maximum(channel_std, 1e-3), [batch, 3]),
            features.PIXEL_MEAN: tf.broadcast_to(channel_mean, [batch, 3])}


def _dense(values):
    return tf.sparse.to_dense(values) if isinstance(values, tf.SparseTensor) else values
