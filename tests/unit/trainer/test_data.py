"""The Trainer's input pipeline: evaluation batches are the transform graph's output in order; training
batches are augmented in pixel space and normalised again with the graph's own constants, repeat with a
seed and differ between seeds, whether the examples are decoded every epoch or held in memory."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from components.core.config import AugmentationConfig
from components.trainer.data import augment, make_dataset, plan_holding
from tests.support.tiny_artifacts import IMAGE_SIZE, trainer_fn_args

NO_AUGMENTATION = AugmentationConfig.from_dict({"horizontal_flip": False, "scale": {"enabled": False}})
EVERYTHING = AugmentationConfig.from_dict({
    "scale": {"enabled": True}, "rotation": {"enabled": True}, "color_jitter": {"enabled": True},
    "blur": {"enabled": True}, "cutmix": {"enabled": True}})


@pytest.fixture()
def pipeline_parts(tiny_artifacts, tmp_path):
    fn_args = trainer_fn_args(tiny_artifacts, tmp_path, custom_config={}, train_steps=1)
    return fn_args, tft.TFTransformOutput(fn_args.transform_graph_path)


def _transformed(fn_args, transform_output, files) -> dict[str, np.ndarray]:
    raw = tf.data.TFRecordDataset(tf.io.gfile.glob(files[0]), compression_type="GZIP").batch(64)
    parsed = tf.io.parse_example(next(iter(raw)), transform_output.raw_feature_spec())
    return {name: value.numpy() for name, value in transform_output.transform_features_layer()(parsed).items()}


def _batches(fn_args, transform_output, augmentation, seed, count=2, batch_size=4, hold=False):
    held_examples = plan_holding(fn_args.train_files, IMAGE_SIZE, limit_mb=1024).held_examples if hold else 0
    dataset = make_dataset(fn_args.train_files, fn_args.data_accessor, transform_output, batch_size,
                           augmentation=augmentation, seed=seed, shuffle_buffer=8, image_size=IMAGE_SIZE,
                           held_examples=held_examples)
    return [(images.numpy(), masks.numpy()) for images, masks in dataset.take(count)]


def test_evaluation_batches_are_the_transform_graph_output_in_order(pipeline_parts):
    fn_args, transform_output = pipeline_parts
    images, masks = next(iter(make_dataset(fn_args.eval_files, fn_args.data_accessor, transform_output, 2)))
    assert images.shape == (2, *IMAGE_SIZE, 3) and images.dtype == tf.float32
    assert masks.shape == (2, *IMAGE_SIZE) and masks.dtype == tf.int64
    assert set(np.unique(masks.numpy())) <= set(range(21)) | {255}
    expected = _transformed(fn_args, transform_output, fn_args.eval_files)
    np.testing.assert_allclose(images.numpy(), expected["image"][:2], atol=1e-5)
    np.testing.assert_array_equal(masks.numpy(), expected["mask"][:2])


@pytest.mark.parametrize("hold", [False, True], ids=["decoded_every_epoch", "held_in_memory"])
def test_training_without_augmentation_gives_back_the_normalised_examples(pipeline_parts, hold):
    """Pixels -> (no change) -> normalised again: each training image is one of the graph's own images."""
    fn_args, transform_output = pipeline_parts
    expected = _transformed(fn_args, transform_output, fn_args.train_files)
    for images, masks in _batches(fn_args, transform_output, NO_AUGMENTATION, seed=1, hold=hold):
        for image, mask in zip(images, masks):
            match = [index for index in range(len(expected["mask"])) if np.array_equal(expected["mask"][index], mask)
                     and np.allclose(expected["image"][index], image, atol=1e-4)]
            assert match


@pytest.mark.parametrize("hold", [False, True], ids=["decoded_every_epoch", "held_in_memory"])
def test_training_batches_repeat_with_a_seed_and_differ_between_seeds(pipeline_parts, hold):
    fn_args, transform_output = pipeline_parts
    first = _batches(fn_args, transform_output, EVERYTHING, seed=3, hold=hold)
    again = _batches(fn_args, transform_output, EVERYTHING, seed=3, hold=hold)
    other = _batches(fn_args, transform_output, EVERYTHING, seed=4, hold=hold)
    for (images, masks), (images_again, masks_again) in zip(first, again):
        np.testing.assert_array_equal(images, images_again)
        np.testing.assert_array_equal(masks, masks_again)
    assert not all(np.array_equal(masks, masks_other) for (_, masks), (_, masks_other) in zip(first, other))
    for images, masks in first:
        assert images.shape == (4, *IMAGE_SIZE, 3) and masks.shape == (4, *IMAGE_SIZE)
        assert set(np.unique(masks)) <= set(range(21)) | {255}
        assert np.all(np.isfinite(images))


def test_examples_held_in_memory_come_back_each_once_an_epoch_in_a_new_order(pipeline_parts):
    """The held split is read and transformed once; every epoch shuffles all of it anew, nothing lost."""
    fn_args, transform_output = pipeline_parts
    expected = _transformed(fn_args, transform_output, fn_args.train_files)["mask"]
    count = len(expected)
    plan = plan_holding(fn_args.train_files, IMAGE_SIZE, limit_mb=1024)
    assert plan.held and plan.held_examples == count
    assert plan.size_mb == count * IMAGE_SIZE[0] * IMAGE_SIZE[1] * 13 / 2 ** 20
    dataset = make_dataset(fn_args.train_files, fn_args.data_accessor, transform_output, 1,
                           augmentation=NO_AUGMENTATION, seed=5, shuffle_buffer=1, image_size=IMAGE_SIZE,
                           held_examples=count)
    masks = [mask[0] for _, mask in dataset.take(2 * count).as_numpy_iterator()]
    orders = []
    for epoch in (masks[:count], masks[count:]):
        order = [next(index for index in range(count) if np.array_equal(expected[index], mask)) for mask in epoch]
        assert sorted(order) == list(range(count))
        orders.append(order)
    assert orders[0] != orders[1]


def test_padding_is_the_mean_pixel_and_the_ignore_label(pipeline_parts):
    """At half scale a quarter of each image is the example; the rest is the graph's mean pixel (normalised
    with the graph's constants) and mask 255."""
    fn_args, transform_output = pipeline_parts
    expected = _transformed(fn_args, transform_output, fn_args.train_files)
    half = AugmentationConfig.from_dict({"horizontal_flip": False,
                                         "scale": {"enabled": True, "min_scale": 0.5, "max_scale": 0.5}})
    padding = (expected["pixel_mean"][0] - expected["normalization_mean"][0]) / expected["normalization_std"][0]
    for images, masks in _batches(fn_args, transform_output, half, seed=2):
        for image, mask in zip(images, masks):
            padded = np.all(np.abs(image - padding) < 1e-4, axis=-1)
            assert padded.sum() >= IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3 // 4
            assert np.all(mask[padded] == 255)


def test_training_needs_the_image_size(pipeline_parts):
    fn_args, transform_output = pipeline_parts
    with pytest.raises(ValueError, match="image_size"):
        make_dataset(fn_args.train_files, fn_args.data_accessor, transform_output, 2, augmentation=NO_AUGMENTATION)


@pytest.mark.parametrize("mask_dtype, scale", [(np.int64, False), (np.uint8, True)],
                         ids=["int64_masks", "held_uint8_masks_scaled"])
def test_augment_batches_examples_and_applies_cutmix_per_batch(mask_dtype, scale):
    """`augment` on hand-made examples: constant normalisation constants, CutMix mixes examples of a batch.
    Each example's image is one colour, 10x its one class, so wherever the mask is a class the image is
    its colour, and wherever the mask is 255 (padding at scales below 1) the image is the mean pixel."""
    masks = np.repeat(np.arange(4, dtype=mask_dtype), 8 * 8).reshape(4, 8, 8)
    images = np.repeat(masks[..., None] * 10.0, 3, axis=-1).astype(np.float32)
    examples = tf.data.Dataset.from_tensor_slices({
        "image": images, "mask": masks, "normalization_mean": np.full((4, 3), 5.0, np.float32),
        "normalization_std": np.full((4, 3), 2.0, np.float32), "pixel_mean": np.full((4, 3), 5.0, np.float32)})
    config = AugmentationConfig.from_dict({"horizontal_flip": False, "scale": {"enabled": scale},
                                           "cutmix": {"enabled": True, "probability": 1.0}})
    mixed = padded = 0
    for seed in range(6):
        batch_images, batch_masks = next(iter(augment(examples, config, (8, 8), batch_size=4, seed=seed)))
        batch_images, batch_masks = batch_images.numpy(), batch_masks.numpy()
        assert batch_masks.dtype == np.int64
        pixels = batch_images[..., 0] * 2.0 + 5.0
        np.testing.assert_allclose(pixels, np.where(batch_masks == 255, 5.0, batch_masks * 10.0), atol=1e-4)
        mixed += int(np.any(batch_masks != masks))
        padded += int(np.any(batch_masks == 255))
    assert mixed > 0 and (padded > 0) == scale
