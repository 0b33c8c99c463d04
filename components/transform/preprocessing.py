"""tf.Transform `preprocessing_fn`: the preprocessing that is embedded in the exported model.

Decodes each example's image and class mask and resizes both to the model's input size, keeping the
aspect ratio and padding ("fit") or stretching (`preprocessing.resize`; bilinear for images, nearest
for masks, padding = the mean pixel in the image and the ignore label in the mask). Analyzers over the
training split compute the per-channel mean and standard deviation of the image pixels (padding
excluded) and the class pixel counts (ignore label excluded); the image is normalised by
`preprocessing.normalization` and the class weights of both weightings are derived from the counts
(formulas in `components.core.preprocessing`). Those constants are repeated as features of every example,
so that the Trainer reads them from the transform output instead of computing them again. It also
buckets the original image size, a feature for evaluation slices.

`custom_config` (from the Transform component, see `transform_custom_config`) carries `image_size`,
`num_classes` and the `preprocessing` section: everything the output depends on, so that TFX's cache
key for Transform changes exactly when one of them does.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from components.core import features, preprocessing
from components.core.config import PipelineConfig

PREPROCESSING_KEY = "preprocessing"


def transform_custom_config(config: PipelineConfig, num_classes: int) -> dict:
    """The Transform component's `custom_config` for `config` and a label map of `num_classes` classes."""
    return {"image_size": list(config.model.image_size), "num_classes": num_classes,
            PREPROCESSING_KEY: config.preprocessing.to_dict()}


def preprocessing_fn(inputs, custom_config):
    """Maps raw ingestion features to the transformed features.

    Args:
        inputs: a batch of raw features keyed by name (see `components.core.features`).
        custom_config: `transform_custom_config(...)`.

    Returns:
        `image`: float32 [B, H, W, 3], normalised; `mask`: int64 [B, H, W] of class ids, 255 = ignore
        (padding included); `content_size`: int64 [B, 2], the rows and columns the image covers;
        `size_bucket`: string [B], the original image's longer side bucketed (an evaluation slice);
        the transform constants, the same for every example: `normalization_mean`, `normalization_std`,
        `pixel_mean` (float32 [B, 3]), `class_pixel_counts` (int64 [B, C]) and the class weights
        (float32 [B, C] per weighting, `features.CLASS_WEIGHTS`).
    """
    size = tuple(custom_config["image_size"])
    num_classes = int(custom_config["num_classes"])
    settings = custom_config[PREPROCESSING_KEY]
    images, contents = preprocessing.decode_and_resize_images(
        preprocessing.to_scalar_strings(inputs[features.IMAGE_ENCODED]), size, settings["resize"])
    masks = preprocessing.decode_and_resize_masks(
        preprocessing.to_scalar_strings(inputs[features.MASK_ENCODED]), size, settings["resize"])
    covered = preprocessing.content_masks(contents, size)

    pixel_mean, pixel_std = _pixel_statistics(images, covered)
    if settings["normalization"] == preprocessing.DATASET_NORMALIZATION:
        mean, std = pixel_mean, tf.maximum(pixel_std, 1e-3)
    else:
        mean, std = (tf.constant(values, tf.float64)
                     for values in preprocessing.FIXED_NORMALIZATIONS[settings["normalization"]])
    mean, std = tf.cast(mean, tf.float32), tf.cast(std, tf.float32)
    normalised = preprocessing.model_input(images, contents, size, pixel_mean, mean, std)

    counts = preprocessing.class_pixel_counts(masks, num_classes)
    split_counts = tft.sum(counts, reduce_instance_dims=False, name="class_pixel_counts")
    pixels_per_image = tf.reduce_sum(counts, axis=1, keepdims=True)
    presence_pixels = tft.sum(tf.where(counts > 0, pixels_per_image, tf.zeros_like(counts)),
                              reduce_instance_dims=False, name="class_presence_pixels")

    batch = tf.shape(images)[0]

    def per_example(constant, length: int = 3):
        return tf.ensure_shape(tf.broadcast_to(tf.reshape(constant, [length]), [batch, length]), [None, length])

    bucket = preprocessing.size_bucket(_dense(inputs[features.IMAGE_HEIGHT]), _dense(inputs[features.IMAGE_WIDTH]))
    outputs = {
        features.IMAGE: normalised, features.MASK: masks, features.CONTENT_SIZE: tf.cast(contents, tf.int64),
        features.SIZE_BUCKET: bucket,
        features.NORMALIZATION_MEAN: per_example(mean), features.NORMALIZATION_STD: per_example(std),
        features.PIXEL_MEAN: per_example(tf.cast(pixel_mean, tf.float32)),
        features.CLASS_PIXEL_COUNTS: per_example(split_counts, num_classes),
    }
    for weighting in preprocessing.CLASS_WEIGHTINGS:
        outputs[features.CLASS_WEIGHTS[weighting]] = per_example(
            preprocessing.class_weights(split_counts, presence_pixels, weighting), num_classes)
    return outputs


def _pixel_statistics(images: tf.Tensor, covered: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-channel mean and standard deviation (float64 [3]) of the covered pixels of the analysed split."""
    weights = tf.cast(covered, tf.float64)[..., None]
    pixels = tf.cast(images, tf.float64)
    # Named analyzers: unnamed ones make tf.Transform warn on every run that their cache keys vary on tracing.
    total = tft.sum(tf.reduce_sum(weights, axis=[1, 2, 3]), reduce_instance_dims=True, name="covered_pixels")
    sums = tft.sum(tf.reduce_sum(pixels * weights, axis=[1, 2]), reduce_instance_dims=False, name="pixel_sums")
    squares = tft.sum(tf.reduce_sum(tf.square(pixels) * weights, axis=[1, 2]), reduce_instance_dims=False,
                      name="pixel_square_sums")
    count = tf.maximum(total, 1.0)
    mean = sums / count
    variance = tf.maximum(squares / count - tf.square(mean), 0.0)
    return mean, tf.sqrt(variance)


def _dense(values):
    return tf.sparse.to_dense(values) if isinstance(values, tf.SparseTensor) else values
