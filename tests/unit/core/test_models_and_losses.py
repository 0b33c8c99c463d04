"""U-Net shapes, the model builder's checkpoint loading, the masked loss and the mIoU metric on known answers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.core.keras_metrics import SegmentationMeanIoU
from components.core.losses import (LOSS_NAMES, CrossEntropyDiceLoss, MaskedSparseCategoricalCrossentropy, SoftDiceLoss,
                                   boundary_pixels, build_loss)
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


def test_class_weighted_cross_entropy_is_normalised_by_the_weights_as_pytorch_is():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=(2, 4, 4))
    labels[0, :2] = 255
    logits = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    class_weights = np.array([0.5, 2.0, 4.0])
    per_pixel = -np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    valid = labels != 255
    picked = np.take_along_axis(per_pixel, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    weights = class_weights[np.where(valid, labels, 0)] * valid
    expected = (picked * weights).sum() / weights.sum()  # torch.nn.CrossEntropyLoss(weight, ignore_index=255)
    loss = MaskedSparseCategoricalCrossentropy(class_weights=class_weights)(labels, logits)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(loss) != pytest.approx(float(MaskedSparseCategoricalCrossentropy()(labels, logits)), rel=1e-3)
    combined = CrossEntropyDiceLoss(dice_weight=0.5, class_weights=class_weights)(labels, logits)
    assert float(combined) == pytest.approx(expected + 0.5 * float(SoftDiceLoss()(labels, logits)), rel=1e-5)
    with pytest.raises(ValueError, match="the 'dice' loss has none"):
        build_loss("dice", class_weights=class_weights)


def test_masked_loss_of_an_all_void_batch_is_zero():
    loss = MaskedSparseCategoricalCrossentropy()(np.full((1, 2, 2), 255), np.zeros((1, 2, 2, 3)))
    assert float(loss) == 0.0


def test_masked_loss_survives_serialisation():
    loss = keras.losses.deserialize(
        keras.losses.serialize(MaskedSparseCategoricalCrossentropy(ignore_label=7, class_weights=[1.0, 2.0])),
        custom_objects={"MaskedSparseCategoricalCrossentropy": MaskedSparseCategoricalCrossentropy})
    assert loss.ignore_label == 7 and loss.class_weights == [1.0, 2.0]


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


def test_boundary_pixels_lie_within_the_width_of_a_label_change_void_included():
    labels = np.array([[[0, 0, 0, 0, 1, 1, 1, 255]]])
    np.testing.assert_array_equal(boundary_pixels(labels, 1).numpy(), [[[0, 0, 0, 1, 1, 0, 1, 1]]])


def test_boundary_weighted_cross_entropy_weighs_edge_pixels_more():
    labels = np.array([[[0, 0, 0, 0, 1, 1, 1, 255]]])
    logits = np.random.default_rng(0).normal(size=(1, 1, 8, 2)).astype(np.float32)
    per_pixel = -np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    chosen = np.array([per_pixel[0, 0, index, label] for index, label in enumerate([0, 0, 0, 0, 1, 1, 1])])
    weights = np.array([1, 1, 1, 4, 4, 1, 4])  # boundary_weight 4 within one pixel of a change
    loss = MaskedSparseCategoricalCrossentropy(boundary_weight=4.0, boundary_width=1)(labels, logits)
    assert float(loss) == pytest.approx((chosen * weights).sum() / weights.sum(), rel=1e-6)


def test_soft_dice_is_zero_for_a_perfect_prediction_and_ignores_void_pixels():
    labels = np.array([[[0, 1], [2, 255]]])
    perfect = 50.0 * np.eye(3)[np.array([[[0, 1], [2, 0]]])]
    assert float(SoftDiceLoss()(labels, perfect)) == pytest.approx(0.0, abs=1e-6)
    # Whatever is predicted on the void pixel changes nothing.
    other = perfect.copy()
    other[0, 1, 1] = 50.0 * np.eye(3)[2]
    assert float(SoftDiceLoss()(labels, other)) == pytest.approx(float(SoftDiceLoss()(labels, perfect)), abs=1e-7)


def test_soft_dice_on_known_probabilities():
    labels = np.array([[[0, 1]]])
    probabilities = np.array([[[[0.75, 0.25], [0.5, 0.5]]]])
    # class 0: 2*0.75 / (1.25 + 1); class 1: 2*0.5 / (0.75 + 1); eps 1 added to both.
    dice = [(1.5 + 1) / (2.25 + 1), (1.0 + 1) / (1.75 + 1)]
    assert float(SoftDiceLoss()(labels, np.log(probabilities))) == pytest.approx(1 - np.mean(dice), rel=1e-6)


def test_cross_entropy_dice_is_their_weighted_sum():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=(2, 4, 4))
    labels[0, 0, 0] = 255
    logits = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    expected = float(MaskedSparseCategoricalCrossentropy()(labels, logits)) + 0.5 * float(SoftDiceLoss()(labels, logits))
    assert float(CrossEntropyDiceLoss(dice_weight=0.5)(labels, logits)) == pytest.approx(expected, rel=1e-6)


def test_every_configurable_loss_builds_and_the_config_knows_them_all():
    from components.core.config import LOSSES

    assert LOSSES == LOSS_NAMES
    for name in LOSS_NAMES:
        assert np.isfinite(float(build_loss(name)(np.zeros((1, 4, 4)), np.zeros((1, 4, 4, 2)))))
    with pytest.raises(ValueError, match="unknown loss 'focal'"):
        build_loss("focal")


def test_unet_options_change_the_blocks_they_name():
    plain = build_unet((32, 32, 3), num_classes=3, base_filters=8, depth=2)
    options = build_unet((32, 32, 3), num_classes=3, base_filters=8, depth=2, separable=True, skip_attention=True,
                         dilated_bottom=True)
    names = {layer.name for layer in options.layers}
    assert {"down1_sepconv1", "up0_sepconv2", "bridge_sepconv1"} <= names and "down0_conv1" in names
    assert {"skip0_se_scale", "skip1_se_scale"} <= names
    assert options.get_layer("bridge_sepconv1").dilation_rate == (2, 2)
    assert options.count_params() < plain.count_params()  # separable blocks hold fewer weights
    assert options(np.zeros((1, 32, 32, 3), np.float32)).shape == (1, 32, 32, 3)


def test_squeeze_excitation_gates_channels_between_zero_and_one():
    from components.core.models.unet import squeeze_excitation

    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, squeeze_excitation(inputs, "se"))
    features = np.abs(np.random.default_rng(0).normal(size=(2, 4, 4, 8))).astype(np.float32) + 0.1
    ratio = model(features).numpy() / features
    assert np.all((ratio > 0) & (ratio < 1))
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1, :1, :], ratio.shape), rtol=1e-5)  # one gate per channel
