"""Dilated backbones: feature strides, where the stride is traded for dilation, and weights that still fit."""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras as keras

from components.core.models.backbones import BACKBONES, build_backbone
from components.core.models.xception import aligned_xception


def _application(backbone: keras.Model) -> dict:
    """Every layer config of the dilated application, by name."""
    return {layer.name: layer.get_config() for layer in backbone.layers}


@pytest.mark.parametrize("name, output_stride, low_channels, high_channels", [
    ("mobilenetv2", 16, 144, 320), ("mobilenetv2", 8, 144, 320), ("resnet50", 16, 256, 2048),
    ("xception41", 16, 64, 512), ("xception41", 8, 64, 512)])
def test_features_come_at_stride_4_and_at_the_output_stride(name, output_stride, low_channels, high_channels):
    # The Xception runs at a quarter of its width here (256 and 2048 channels at 1.0).
    backbone = build_backbone(name, (64, 96, 3), output_stride,
                              width_multiplier=0.25 if name.startswith("xception") else 1.0)
    low, high = backbone(np.zeros((1, 64, 96, 3), np.float32))
    assert low.shape == (1, 16, 24, low_channels)
    assert high.shape == (1, 64 // output_stride, 96 // output_stride, high_channels)


@pytest.mark.parametrize("output_stride, kept, dilated", [
    # At output stride 16 the last down-sampling (block 13) keeps stride 1 and every later depthwise
    # convolution is dilated by 2; at 8, block 6 too, and the rates double again after block 13.
    (16, {"block_13_depthwise": 1}, {"block_12_depthwise": 1, "block_14_depthwise": 2, "block_16_depthwise": 2}),
    (8, {"block_6_depthwise": 1, "block_13_depthwise": 2},
     {"block_5_depthwise": 1, "block_7_depthwise": 2, "block_12_depthwise": 2, "block_14_depthwise": 4}),
])
def test_mobilenetv2_trades_its_last_strides_for_dilation(output_stride, kept, dilated):
    layers = _application(build_backbone("mobilenetv2", (64, 64, 3), output_stride))
    for name, rate in kept.items():
        assert tuple(layers[name]["strides"]) == (1, 1) and tuple(layers[name]["dilation_rate"]) == (rate, rate)
        assert layers[name]["padding"] == "same"
    for name, rate in dilated.items():
        assert tuple(layers[name]["dilation_rate"]) == (rate, rate), name
    assert tuple(layers["block_6_depthwise"]["strides"]) == ((2, 2) if output_stride == 16 else (1, 1))


def test_resnet50_keeps_both_branches_of_stage_5_at_stride_16_and_dilates_its_3x3_convolutions():
    layers = _application(build_backbone("resnet50", (64, 64, 3), 16))
    assert tuple(layers["conv5_block1_1_conv"]["strides"]) == (1, 1)
    assert tuple(layers["conv5_block1_0_conv"]["strides"]) == (1, 1)  # the shortcut: same stride, same rate
    assert tuple(layers["conv4_block1_1_conv"]["strides"]) == (2, 2)
    for block in (1, 2, 3):
        assert tuple(layers[f"conv5_block{block}_2_conv"]["dilation_rate"]) == (2, 2)
    assert tuple(layers["conv4_block6_2_conv"]["dilation_rate"]) == (1, 1)


def test_aligned_xception_has_the_published_layout_and_dilates_its_exit_flow():
    """Xception-65 at full width: 16 middle blocks of 728 channels, the exit flow's 1536/1536/2048, an extra
    batch norm and ReLU after every depthwise convolution, strided separable convolutions (no pooling)."""
    network = aligned_xception((64, 64, 3))
    names = [layer.name for layer in network.layers]
    assert sum(name.endswith("_add") and name.startswith("middle") for name in names) == 16
    assert network.get_layer("middle_block16_sepconv3_pointwise").filters == 728
    assert [network.get_layer(f"exit_sepconv{i}_pointwise").filters for i in (1, 2, 3)] == [1536, 1536, 2048]
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in network.layers)
    assert all(f"{layer.name}_bn" in names and f"{layer.name}_relu" in names
               for layer in network.layers if isinstance(layer, keras.layers.DepthwiseConv2D))
    assert network.output.shape[1:] == (2, 2, 2048)
    layers = _application(build_backbone("xception65", (64, 64, 3), 16, width_multiplier=0.25))
    assert tuple(layers["exit_block1_sepconv3_depthwise"]["strides"]) == (1, 1)
    assert tuple(layers["exit_block1_shortcut"]["strides"]) == (1, 1)
    assert tuple(layers["exit_sepconv1_depthwise"]["dilation_rate"]) == (2, 2)
    assert tuple(layers["entry_block3_sepconv3_depthwise"]["strides"]) == (2, 2)
    assert set(BACKBONES) == {"mobilenetv2", "resnet50", "xception65", "xception41"}


def test_weights_of_the_plain_application_load_into_the_dilated_backbone(tmp_path):
    plain = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, include_top=False, weights=None)
    rng = np.random.default_rng(0)
    plain.set_weights([rng.normal(size=weight.shape).astype(np.float32) for weight in plain.get_weights()])
    plain.save_weights(str(tmp_path / "mobilenet_v2_notop.h5"))
    backbone = build_backbone("mobilenetv2", (64, 64, 3), 16, width_multiplier=0.35,
                              weights=str(tmp_path / "mobilenet_v2_notop.h5"))
    for expected, loaded in zip(plain.get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(expected, loaded)


def test_unknown_backbone_and_stride_are_refused():
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        build_backbone("vgg16", (64, 64, 3))
    with pytest.raises(ValueError, match="output stride must be 8, 16 or 32"):
        build_backbone("mobilenetv2", (64, 64, 3), 4)


def test_batch_norm_momentum_is_set_everywhere_when_asked_and_kept_otherwise():
    own = build_backbone("mobilenetv2", (32, 32, 3), 16, width_multiplier=0.35)
    assert {layer.momentum for layer in own.layers if isinstance(layer, keras.layers.BatchNormalization)} == {0.999}
    short = build_backbone("mobilenetv2", (32, 32, 3), 16, width_multiplier=0.35, batch_norm_momentum=0.9)
    assert {layer.momentum for layer in short.layers if isinstance(layer, keras.layers.BatchNormalization)} == {0.9}
