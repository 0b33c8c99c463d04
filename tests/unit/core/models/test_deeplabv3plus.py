"""DeepLabv3+: logits at the input size, its ASPP and decoder as the paper describes, a float32 head under
mixed precision, and the builder's errors naming the configuration key."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.core.config import ModelConfig, PipelineConfig
from components.core.hyperparams import ConfigError
from components.core.models.builder import build_model
from components.core.models.deeplabv3plus import build_deeplabv3plus, effective_rates

TINY = {"aspp_filters": 8, "low_level_filters": 4, "decoder_filters": 8, "width_multiplier": 0.35}


@pytest.mark.parametrize("backbone, output_stride", [("mobilenetv2", 16), ("mobilenetv2", 8), ("resnet50", 16),
                                                     ("xception41", 16)])
def test_logits_come_at_the_input_size(backbone, output_stride):
    model = build_deeplabv3plus((32, 48, 3), 5, backbone=backbone, output_stride=output_stride, **TINY)
    logits = model(np.zeros((2, 32, 48, 3), np.float32))
    assert logits.shape == (2, 32, 48, 5) and logits.dtype == tf.float32


def test_aspp_has_a_1x1_branch_three_atrous_branches_and_image_pooling_then_the_decoder():
    model = build_deeplabv3plus((320, 320, 3), 3, atrous_rates=(6, 12, 18), **TINY)  # 20x20 features
    rates = [model.get_layer(f"aspp_atrous{index}_conv").dilation_rate for index in (1, 2, 3)]
    assert rates == [(6, 6), (12, 12), (18, 18)]
    assert model.get_layer("aspp_1x1_conv").kernel_size == (1, 1)
    assert isinstance(model.get_layer("aspp_image_pool"), keras.layers.GlobalAveragePooling2D)
    assert len(model.get_layer("aspp_concat").input) == 5
    assert model.get_layer("decoder_low_level_conv").filters == 4  # projected low-level features
    assert model.get_layer("decoder_upsample").output.shape[1:3] == (80, 80)  # stride 16 -> 4
    assert [model.get_layer(f"decoder_refine{index}_conv").kernel_size for index in (1, 2)] == [(3, 3), (3, 3)]


def test_the_transposed_decoder_upsamples_by_learned_stride_2_steps_to_logits_at_the_input_size():
    """The optional decoder: 4 -> 2 -> 1 by transposed convolutions, logits computed at full size, float32."""
    model = build_model(ModelConfig.from_dict({
        "architecture": "deeplabv3plus", "image_size": [32, 48],
        "deeplabv3plus": {"aspp_filters": 8, "low_level_filters": 4, "decoder_filters": 8,
                          "backbone": {"width_multiplier": 0.35}, "upsampling": "transposed"}}), 5)
    ups = [model.get_layer(f"decoder_up{index}_conv") for index in (1, 2)]
    assert all(isinstance(layer, keras.layers.Conv2DTranspose) and layer.strides == (2, 2) for layer in ups)
    assert [layer.output.shape[1:] for layer in ups] == [(16, 24, 4), (32, 48, 2)]
    assert model.get_layer("logits").output.shape[1:] == (32, 48, 5)
    assert "logits_upsample" not in [layer.name for layer in model.layers]
    logits = model(np.zeros((2, 32, 48, 3), np.float32))
    assert logits.shape == (2, 32, 48, 5) and logits.dtype == tf.float32
    with pytest.raises(ConfigError, match="'model.deeplabv3plus.upsampling' must be 'bilinear' or 'transposed'"):
        PipelineConfig.from_dict({"model": {"architecture": "deeplabv3plus",
                                            "deeplabv3plus": {"upsampling": "nearest"}}})


def test_the_aspp_is_built_with_the_rates_lowered_past_the_feature_size():
    model = build_deeplabv3plus((64, 64, 3), 3, atrous_rates=(2, 6, 18), **TINY)  # 4x4 features
    # 6 and 18 both read only padding with their outer taps: lowered to 4, then to 5 to stay distinct (the
    # outputs are the asked rates': test_every_lowered_rate_computes_what_the_asked_one_does).
    assert [model.get_layer(f"aspp_atrous{index}_conv").dilation_rate for index in (1, 2, 3)] == \
        [(2, 2), (4, 4), (5, 5)]


def test_rates_are_lowered_only_past_the_longer_side_and_stay_distinct():
    assert effective_rates((6, 12, 18), 33, 33) == (6, 12, 18)  # a 513x513 crop at output stride 16
    assert effective_rates((6, 12, 18), 4, 4) == (4, 5, 6)
    assert effective_rates((6, 12, 18), 4, 8) == (6, 8, 9)  # rate 6 still reaches across the 8 columns
    assert effective_rates((18, 4), 4, 4) == (4, 5)
    assert effective_rates((3, 18, 18), 4, 4) == (3, 4, 5)
    assert effective_rates((6, 6, 18), 33, 33) == (6, 6, 18)  # equal rates a user asked for are kept


@pytest.mark.parametrize("rates, height, width", [((2, 6, 18), 4, 4), ((6, 12, 18), 4, 4), ((6, 12, 18), 4, 8),
                                                  ((3, 18, 18), 4, 4)])
def test_every_lowered_rate_computes_what_the_asked_one_does(rates, height, width):
    features = np.random.default_rng(1).normal(size=(2, height, width, 5)).astype(np.float32)
    for asked, lowered in zip(rates, effective_rates(rates, height, width)):
        original = keras.layers.Conv2D(3, 3, padding="same", dilation_rate=asked)
        expected = original(features)
        replacement = keras.layers.Conv2D(3, 3, padding="same", dilation_rate=lowered)
        replacement.build(features.shape)
        replacement.set_weights(original.get_weights())
        np.testing.assert_allclose(replacement(features), expected, atol=1e-6, err_msg=f"{asked} -> {lowered}")


def test_rates_double_at_output_stride_8():
    assert ModelConfig.from_dict({"architecture": "deeplabv3plus",
                                  "deeplabv3plus": {"output_stride": 8}}).deeplabv3plus.atrous_rates == (12, 24, 36)


def test_the_head_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_deeplabv3plus((32, 32, 3), 3, **TINY)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("aspp_projection_conv").compute_dtype == "float16"
    assert model.get_layer("logits").compute_dtype == "float32"
    assert model(np.zeros((1, 32, 32, 3), np.float32)).dtype == tf.float32


def test_input_not_divisible_by_the_output_stride_is_refused():
    with pytest.raises(ValueError, match="must be divisible by the output stride = 16"):
        build_deeplabv3plus((40, 32, 3), 3)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'model.image_size' must be \[height, width\], each divisible by the "
                                          r"output stride = 16"):
        PipelineConfig.from_dict({"model": {"architecture": "deeplabv3plus", "image_size": [40, 32]}})
    with pytest.raises(ConfigError, match="'model.deeplabv3plus.backbone.name' must be 'mobilenetv2', 'resnet50', 'xception65' or 'xception41'"):
        PipelineConfig.from_dict({"model": {"architecture": "deeplabv3plus",
                                            "deeplabv3plus": {"backbone": {"name": "vgg"}}}})
    missing = ModelConfig.from_dict({"architecture": "deeplabv3plus", "image_size": [32, 32],
                                     "deeplabv3plus": {"backbone": {"weights": str(tmp_path / "absent.h5")}}})
    with pytest.raises(ConfigError, match=r"'model.deeplabv3plus.backbone.weights' .*absent.h5: no such weights file"):
        build_model(missing, 3)
    unfitting = tmp_path / "resnet.h5"
    keras.applications.ResNet50(input_shape=(32, 32, 3), include_top=False, weights=None).save_weights(str(unfitting))
    wrong = ModelConfig.from_dict({"architecture": "deeplabv3plus", "image_size": [32, 32],
                                   "deeplabv3plus": {"backbone": {"weights": str(unfitting)}}})
    with pytest.raises(ConfigError, match="'model.deeplabv3plus.backbone.weights' .*resnet.h5: the weights do not fit "
                                          "the mobilenetv2 backbone"):
        build_model(wrong, 3)
