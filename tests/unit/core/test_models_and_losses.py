"""U-Net shapes, the model builder's checkpoint loading, the masked loss and the mIoU metric on known answers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.core.keras_metrics import SegmentationMeanIoU
from components.core.losses import MaskedSparseCategoricalCrossentropy
from components.core.config import ModelConfig
from components.core.hyperparams import ConfigError
from components.core.models.builder import build_model
from components.core.models.unet import build_unet


def test_unet_maps_images_to_per_pixel_logits():
    model = build_unet((32, 48, 3), num_classes=5, base_filters=4, depth=2)
    logits = model(np.zeros((2, 32, 48, 3), np.float32))
    assert logits.shape == (2, 32, 48, 5)
    assert logits.dtype == tf.float32


def test_unet_rejects_sizes_not_divisible_by_its_depth():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 8"):
        build_unet((36, 32, 3), num_classes=3, depth=3)


def _tiny_unet_config(**changes) -> ModelConfig:
    return ModelConfig.from_dict({"image_size": [16, 16], "unet": {"base_filters": 2, "depth": 1}, **changes})


def test_unet_weights_round_trip(tmp_path):
    model = build_model(_tiny_unet_config(), num_classes=3)
    images = np.random.default_rng(0).normal(size=(1, 16, 16, 3)).astype(np.float32)
    model.save_weights(str(tmp_path / "weights"))
    restored = build_model(_tiny_unet_config(init_checkpoint=str(tmp_path / "weights")), num_classes=3)
    np.testing.assert_allclose(restored(images), model(images), atol=1e-6)


def test_a_missing_or_unfitting_checkpoint_is_an_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'model.init_checkpoint' .*absent: no such weights file"):
        build_model(_tiny_unet_config(init_checkpoint=str(tmp_path / "absent")), num_classes=3)
    build_model(_tiny_unet_config(), num_classes=5).save_weights(str(tmp_path / "five_classes"))
    with pytest.raises(ConfigError, match=r"'model.init_checkpoint' .*five_classes: the weights do not fit the unet"):
        build_model(_tiny_unet_config(init_checkpoint=str(tmp_path / "five_classes")), num_classes=3)


def test_masked_loss_ignores_void_pixels_and_averages_over_valid_ones():
    probabilities = np.array([[[[0.5, 0.5], [0.1, 0.9]], [[0.2, 0.8], [0.3, 0.7]]]])
    labels = np.array([[[0, 255], [1, 255]]])
    loss = MaskedSparseCategoricalCrossentropy()(labels, np.log(probabilities))
    assert float(loss) == pytest.approx((-np.log(0.5) - np.log(0.8)) / 2, rel=1e-6)


def test_masked_loss_of_an_all_void_batch_is_zero():
    loss = MaskedSparseCategoricalCrossentropy()(np.full((1, 2, 2), 255), np.zeros((1, 2, 2, 3)))
    assert float(loss) == 0.0


def test_masked_loss_survives_serialisation():
    loss = keras.losses.deserialize(keras.losses.serialize(MaskedSparseCategoricalCrossentropy(ignore_label=7)),
                                    custom_objects={"MaskedSparseCategoricalCrossentropy":
                                                    MaskedSparseCategoricalCrossentropy})
    assert loss.ignore_label == 7


def test_miou_accumulates_over_batches_and_skips_absent_classes():
    metric = SegmentationMeanIoU(num_classes=4)
    one_hot = np.eye(4)
    # Batch 1: class 0 right, class 1 predicted where the truth is 2; the ignored pixel predicts 0.
    metric.update_state(np.array([[[0, 1], [2, 255]]]), one_hot[np.array([[[0, 1], [1, 0]]])])
    # Batch 2: one more correct class-2 pixel. Class 3 never appears: left out of the mean.
    metric.update_state(np.array([[[2]]]), one_hot[np.array([[[2]]])])
    # IoU0 = 1/1, IoU1 = 1/2, IoU2 = 1/2 -> mean over 3 classes.
    assert float(metric.result()) == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_miou_broadcasts_one_weight_per_example():
    metric = SegmentationMeanIoU(num_classes=2)
    labels = np.array([[[0, 1]], [[1, 1]]])
    predictions = np.eye(2)[np.array([[[0, 0]], [[1, 1]]])]
    metric.update_state(labels, predictions, sample_weight=np.array([[1.0], [0.0]]))
    # Only the first example counts: IoU0 = 1/2, IoU1 = 0/1.
    assert float(metric.result()) == pytest.approx(0.25)
