"""The Trainer's input pipeline: transformed batches from real artifacts, and augmentation that keeps
image and mask aligned and repeats with a fixed seed."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components.core.config import AugmentationConfig
from components.trainer.data import augment, make_dataset, random_horizontal_flip
from tests.support.tiny_artifacts import IMAGE_SIZE, trainer_fn_args


def _class_coded_batch(batch: int = 16, height: int = 4, width: int = 6):
    """Images whose red channel is the class id of the same pixel in the mask (all pixels differ)."""
    masks = np.arange(batch * height * width).reshape(batch, height, width) % 200
    images = np.stack([masks, masks * 0 + 7, masks * 0 + 9], axis=-1).astype(np.float32)
    return tf.constant(images), tf.constant(masks, tf.int64)


def test_flip_moves_image_and_mask_together():
    images, masks = _class_coded_batch()
    flipped_images, flipped_masks = random_horizontal_flip(images, masks, seed=tf.constant([1, 2], tf.int64))
    np.testing.assert_array_equal(flipped_images.numpy()[..., 0], flipped_masks.numpy())
    changed = np.any(flipped_masks.numpy() != masks.numpy(), axis=(1, 2))
    assert 0 < changed.sum() < len(changed)  # some examples flipped, some not
    np.testing.assert_array_equal(flipped_masks.numpy()[changed], masks.numpy()[changed][:, :, ::-1])


def test_augmentation_repeats_with_a_fixed_seed_and_is_off_when_disabled():
    images, masks = _class_coded_batch()
    dataset = tf.data.Dataset.from_tensors((images, masks)).repeat(3)

    def run(config, seed):
        return [batch_masks.numpy() for _, batch_masks in augment(dataset, config, seed)]

    flip = AugmentationConfig(horizontal_flip=True)
    np.testing.assert_array_equal(run(flip, 5), run(flip, 5))
    assert not np.array_equal(run(flip, 5), run(flip, 6))
    unchanged = run(AugmentationConfig(horizontal_flip=False), 5)
    assert all(np.array_equal(batch, masks.numpy()) for batch in unchanged)


def test_evaluation_batches_are_the_transform_graph_output_in_order(tiny_artifacts, tmp_path):
    fn_args = trainer_fn_args(tiny_artifacts, tmp_path, custom_config={}, train_steps=1)
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    images, masks = next(iter(make_dataset(fn_args.eval_files, fn_args.data_accessor, transform_output, 2)))
    assert images.shape == (2, *IMAGE_SIZE, 3) and images.dtype == tf.float32
    assert masks.shape == (2, *IMAGE_SIZE) and masks.dtype == tf.int64
    assert set(np.unique(masks.numpy())) <= set(range(21)) | {255}

    raw = tf.data.TFRecordDataset(tf.io.gfile.glob(fn_args.eval_files[0]), compression_type="GZIP").batch(2)
    parsed = tf.io.parse_example(next(iter(raw)), transform_output.raw_feature_spec())
    expected = transform_output.transform_features_layer()(parsed)
    np.testing.assert_allclose(images.numpy(), expected["image"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(masks.numpy(), expected["mask"].numpy())
