"""The Trainer's input pipeline: raw examples -> tf.Transform graph -> (augmented) (image, mask) batches.

The Trainer reads the raw ingested examples (Transform runs with `materialize=False`) and applies the
transform graph here, so the same graph is embedded in the exported model. Evaluation batches are the
graph's output, in order, never augmented. Training examples are shuffled, repeated and augmented anew
every epoch (`components.core.augmentation`): the graph's normalised images are turned back into pixels
with the graph's own constants (`normalization_mean`, `normalization_std`), each example gets its own
augmentation seed, and batches are augmented (each example with its seed, padding with the graph's
`pixel_mean`; one resampling op a batch), mixed by CutMix and normalised again.

Training examples can be held in memory in pixel space after their first pass (`held_examples`, as
`plan_holding` decides against `training.cache_limit_mb`): later epochs then only shuffle and augment
them (decoding and the transform graph were ~4 ms of CPU an image at 256x256, which the input pipeline
shares with the training step on a CPU; README, the figures of `bench_train.py`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components.core import augmentation as augmentation_ops
from components.core import features
from components.core.config import AugmentationConfig

_CUTMIX_STREAM = 1
"""Folded into the first example's seed of a batch to give the batch's CutMix seed."""

def make_dataset(file_pattern, data_accessor: tfx.components.DataAccessor,
                 transform_output: tft.TFTransformOutput, batch_size: int,
                 augmentation: AugmentationConfig | None = None, seed: int | None = None,
                 shuffle_buffer: int = 1000, image_size: tuple[int, int] | None = None,
                 held_examples: int = 0) -> tf.data.Dataset:
    """Reads raw examples, applies the transform graph and yields (image, mask) batches: normalised images
    float32 [B, H, W, 3], masks int64 [B, H, W].

    Args:
        file_pattern: TFRecord file patterns of one split.
        data_accessor: the Trainer's data accessor.
        transform_output: the Transform component's output.
        batch_size: global batch size.
        augmentation: for training data: shuffle, repeat and augment as configured; None for
            evaluation data (read in order, repeated so that every epoch can take its batches).
        seed: seed of shuffling and augmentation; None: different each run (and nothing repeats).
        shuffle_buffer: serialized examples shuffled together as they are read (training data only);
            with `held_examples`, the held examples are all shuffled together every epoch instead.
        image_size: (height, width) of training images, the model's input size (the random crop's size);
            needed with `augmentation`.
        held_examples: with `augmentation` and > 0: the split's example count (`plan_holding`); read and
            transform the split once, hold its examples in memory (pixels float32, masks uint8) and shuffle
            all of them, every epoch anew. 0: the serialized examples are shuffled and every epoch decodes
            them again.

    Raises:
        ValueError: `augmentation` without `image_size`.
    """
    training = augmentation is not None
    # Shards are read interleaved and examples decoded and mapped in parallel (AUTOTUNE); order is kept
    # only when it matters: evaluation data, and training data of a seeded (repeatable) run.
    deterministic = not training or seed is not None
    if training and image_size is None:
        raise ValueError("make_dataset needs the model's image_size to augment training data")
    hold = training and held_examples > 0
    shuffle_serialized = training and not hold  # held examples are shuffled once held instead
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, shuffle=shuffle_serialized,
                                       num_epochs=1 if hold else None, shuffle_buffer_size=shuffle_buffer,
                                       shuffle_seed=seed if shuffle_serialized else None,
                                       sloppy_ordering=not deterministic),
        transform_output.raw_metadata.schema)
    transform_layer = transform_output.transform_features_layer()

    if training:
        dataset = dataset.map(lambda raw: to_pixels(transform_layer(raw)), num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.unbatch()
        if hold:
            # The whole split shuffled together (the buffer holds references to the held tensors): read once
            # in the files' order, a split sorted by name or city would otherwise stay locally sorted.
            buffer = max(shuffle_buffer, held_examples)
            dataset = dataset.map(_compact_mask).cache().shuffle(buffer, seed=seed).repeat()
        dataset = augment(dataset, augmentation, tuple(image_size), batch_size, seed)
    else:
        dataset = dataset.map(lambda raw: _pair(transform_layer(raw)), num_parallel_calls=tf.data.AUTOTUNE)
    # Under MultiWorkerMirroredStrategy, tf.data shards by file by default: a split with fewer files than
    # workers leaves a worker without data. Sharding by element works whatever the file count.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = deterministic
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def count_examples(file_pattern) -> int:
    """Examples in the ingested, GZIP-compressed TFRecords of `file_pattern`, read once without decoding."""
    files = [name for pattern in ([file_pattern] if isinstance(file_pattern, str) else file_pattern)
             for name in tf.io.gfile.glob(pattern)]
    return int(tf.data.TFRecordDataset(files, compression_type="GZIP").reduce(0, lambda total, _: total + 1))


class HoldingPlan(NamedTuple):
    """Whether a training split is held in memory: its example count (None: not counted, holding is
    off), their size held, and the decision."""
    examples: int | None
    size_mb: float
    held: bool

    @property
    def held_examples(self) -> int:
        """`make_dataset`'s `held_examples`: the count when held, else 0."""
        return self.examples if self.held else 0


def plan_holding(file_pattern, image_size: tuple[int, int], limit_mb: int) -> HoldingPlan:
    """Counts the split's examples once and decides to hold them when their pixels (float32) and masks
    (uint8) at `image_size` take at most `limit_mb` megabytes; `limit_mb` 0 decides not to and reads nothing."""
    if not limit_mb:
        return HoldingPlan(examples=None, size_mb=0.0, held=False)
    examples = count_examples(file_pattern)
    height, width = image_size
    size_mb = examples * height * width * (3 * 4 + 1) / 2 ** 20
    return HoldingPlan(examples=examples, size_mb=size_mb, held=size_mb <= limit_mb)


def _compact_mask(example):
    """The example with its mask as uint8, an eighth of int64's memory: class ids and the ignore label 255
    fit (a label map has at most 255 classes)."""
    return {**example, features.MASK: tf.cast(example[features.MASK], tf.uint8)}


def _pair(transformed):
    return transformed[features.IMAGE], transformed[features.MASK]


def to_pixels(transformed) -> dict[str, tf.Tensor]:
    """The transform graph's output for a batch -> pixels (RGB, 0-255), mask and the constants to normalise again.

    Returns:
        `image` float32 [B, H, W, 3] = normalised image * `normalization_std` + `normalization_mean`;
        `mask`; and the per-example constants `normalization_mean`, `normalization_std`, `pixel_mean` ([B, 3]).
    """
    mean = tf.cast(transformed[features.NORMALIZATION_MEAN], tf.float32)
    std = tf.cast(transformed[features.NORMALIZATION_STD], tf.float32)
    return {features.IMAGE: transformed[features.IMAGE] * std[:, None, None, :] + mean[:, None, None, :],
            features.MASK: transformed[features.MASK],
            features.NORMALIZATION_MEAN: mean, features.NORMALIZATION_STD: std,
            features.PIXEL_MEAN: tf.cast(transformed[features.PIXEL_MEAN], tf.float32)}


def augment(examples: tf.data.Dataset, config: AugmentationConfig, image_size: tuple[int, int],
            batch_size: int, seed: int | None = None) -> tf.data.Dataset:
    """Batches single examples in pixel space, augments the batches and normalises them again.

    Every example draws its randomness from its own stateless seed, taken in order from a seeded stream
    (`tf.data.Dataset.random(seed)`), so a fixed `seed` repeats the same augmentations whatever the
    parallelism of the pipeline; `seed` None gives different ones each run. An example's augmentation is
    the same whichever batch it lands in (`components.core.augmentation.augment_batch`); a batch's CutMix
    seed is folded from its first example's.

    Args:
        examples: dicts of one example each, as `to_pixels` gives them (unbatched).
        config: the augmentations.
        image_size: (height, width) of the output images.
        batch_size: examples per batch (the last, partial batch of a finite dataset is dropped).
        seed: the stream's seed.

    Returns:
        (images float32 [B, H, W, 3] normalised with the graph's constants, masks int64 [B, H, W]).
    """
    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)

    def augment_batch(batch, example_seeds):
        images, masks = augmentation_ops.augment_batch(batch[features.IMAGE], batch[features.MASK],
                                                       batch[features.PIXEL_MEAN], example_seeds, config, image_size)
        masks = tf.cast(masks, tf.int64)
        if config.cutmix.enabled:
            batch_seed = tf.random.experimental.stateless_fold_in(example_seeds[0], _CUTMIX_STREAM)
            images, masks = augmentation_ops.cutmix(images, masks, batch_seed, config.cutmix.probability)
        mean, std = batch[features.NORMALIZATION_MEAN], batch[features.NORMALIZATION_STD]
        return (images - mean[:, None, None, :]) / std[:, None, None, :], masks

    return (tf.data.Dataset.zip((examples, seeds))
            .batch(batch_size, drop_remainder=True)
            .map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE))


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
