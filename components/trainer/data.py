"""The Trainer's input pipeline: raw examples -> tf.Transform graph -> (augmented) (image, mask) batches.

The Trainer reads the raw ingested examples (Transform runs with `materialize=False`) and applies the
transform graph here, so the same graph is embedded in the exported model. Training batches are
shuffled, repeated and augmented; evaluation batches never are.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components.core import features
from components.core.config import AugmentationConfig


def make_dataset(file_pattern, data_accessor: tfx.components.DataAccessor,
                 transform_output: tft.TFTransformOutput, batch_size: int,
                 augmentation: AugmentationConfig | None = None, seed: int | None = None,
                 shuffle_buffer: int = 1000) -> tf.data.Dataset:
    """Reads raw examples, applies the transform graph and yields (image, mask) batches.

    Args:
        file_pattern: TFRecord file patterns of one split.
        data_accessor: the Trainer's data accessor.
        transform_output: the Transform component's output.
        batch_size: global batch size.
        augmentation: for training data: shuffle, repeat and augment as configured; None for
            evaluation data (read in order, repeated so that every epoch can take its batches).
        seed: seed of shuffling and augmentation (None: different each run).
        shuffle_buffer: serialized examples shuffled together (training data only).
    """
    training = augmentation is not None
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, shuffle=training, num_epochs=None,
                                       shuffle_buffer_size=shuffle_buffer, shuffle_seed=seed if training else None),
        transform_output.raw_metadata.schema)
    transform_layer = transform_output.transform_features_layer()

    def to_pair(raw):
        transformed = transform_layer(raw)
        return transformed[features.IMAGE], transformed[features.MASK]

    dataset = dataset.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
    if training:
        dataset = augment(dataset, augmentation, seed)
    # Under MultiWorkerMirroredStrategy, tf.data shards by file by default: a split with fewer files than
    # workers leaves a worker without data. Sharding by element works whatever the file count.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def augment(dataset: tf.data.Dataset, config: AugmentationConfig, seed: int | None = None) -> tf.data.Dataset:
    """Applies the configured augmentations to a dataset of (images, masks) batches.

    Every batch draws its randomness from its own stateless seed, taken in order from a seeded stream
    (`tf.data.Dataset.random(seed)`), so a fixed `seed` repeats the same augmentations whatever
    the parallelism of the map; `seed` None gives different ones each run.
    """
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def augment_batch(batch, seed):
        images, masks = batch
        if config.horizontal_flip:
            images, masks = random_horizontal_flip(images, masks, seed)
        return images, masks

    return tf.data.Dataset.zip((dataset, seeds)).map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)


def random_horizontal_flip(images, masks, seed):
    """Flips each (image, mask) pair of a batch left-right with probability 1/2, both alike.

    Args:
        images: [B, H, W, C].
        masks: [B, H, W].
        seed: stateless seed, an int64 tensor of shape [2]: the same seed gives the same flips.
    """
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed=seed) < 0.5
    images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    masks = tf.where(flip[:, None, None], tf.reverse(masks, axis=[2]), masks)
    return images, masks


def read_transform_constants(file_pattern, data_accessor: tfx.components.DataAccessor,
                             transform_output: tft.TFTransformOutput) -> dict[str, np.ndarray]:
    """The transform graph's per-dataset constants (what its analyzers computed over the training split):
    normalisation, mean pixel, class pixel counts and class weights, keyed by feature name.

    The transform repeats them in every example; this reads them from one example of `file_pattern`.
    Only the constants the graph has are returned (a graph written by an older preprocessing has fewer).
    """
    names = [features.NORMALIZATION_MEAN, features.NORMALIZATION_STD, features.PIXEL_MEAN,
             features.CLASS_PIXEL_COUNTS, *features.CLASS_WEIGHTS.values()]
    dataset = data_accessor.tf_dataset_factory(
        file_pattern, tfxio.TensorFlowDatasetOptions(batch_size=1, shuffle=False, num_epochs=1),
        transform_output.raw_metadata.schema)
    transformed = transform_output.transform_features_layer()(next(iter(dataset)))
    return {name: transformed[name].numpy()[0] for name in names if name in transformed}
