"""Aligned Xception (Chen et al. 2018, "Encoder-Decoder with Atrous Separable Convolution", Fig. 4), the
backbone of DeepLabv3+'s best published results, written in tf-keras (it is not a tf-keras application;
`keras.applications.Xception` is the original classification network, with max pooling and unpadded
first convolutions, so its strides do not line up with the decoder's).

Entry flow: 3x3 conv 32 (stride 2), 3x3 conv 64, then three blocks of 128, 256 and 728 channels; middle
flow: `middle_blocks` blocks of 728 channels (16 in Xception-65, 8 in Xception-41); exit flow: a block
of 728, 1024, 1024 channels and three separable convolutions of 1536, 1536, 2048. A block is three
separable convolutions (3x3 depthwise, batch norm, ReLU, 1x1 pointwise, batch norm, ReLU: the extra
batch norm and ReLU after the depthwise convolution are DeepLab's) plus a residual connection: a strided
1x1 convolution and batch norm where the block's last separable convolution has stride 2, the identity
in the middle flow. Every down-sampling is a strided convolution with "same" padding (no max pooling),
so the stride is exactly 2, 4, 8, 16, 32 for inputs divisible by 32, and
`components.core.models.backbones.dilate` can trade strides for dilation.

`width_multiplier` scales every layer's channels (rounded, at least 8): 1.0 is the published network; a
smaller one is the same architecture, narrower (what CPU tests train).
"""

from __future__ import annotations

import tf_keras as keras

LOW_LEVEL_LAYER = "entry_block2_sepconv2_pointwise_relu"
"""The stride-4, 256-channel features DeepLabv3+'s decoder takes (as DeepLab's own Xception-65 does)."""
HIGH_LEVEL_LAYER = "exit_sepconv3_pointwise_relu"


def _channels(filters: int, width_multiplier: float) -> int:
    return max(8, int(round(filters * width_multiplier)))


def _separable(x, filters: int, name: str, stride: int = 1):
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_depthwise")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_depthwise_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_depthwise_relu")(x)
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pointwise")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_pointwise_bn")(x)
    return keras.layers.ReLU(name=f"{name}_pointwise_relu")(x)


def _block(x, filters: tuple[int, int, int], name: str, stride: int, residual: str):
    """Three separable convolutions, the last with `stride`; residual "conv" (strided 1x1) or "identity"."""
    shortcut = x
    for index, channels in enumerate(filters, start=1):
        x = _separable(x, channels, f"{name}_sepconv{index}", stride=stride if index == len(filters) else 1)
    if residual == "conv":
        shortcut = keras.layers.Conv2D(filters[-1], 1, strides=stride, use_bias=False, name=f"{name}_shortcut")(shortcut)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    return keras.layers.Add(name=f"{name}_add")([x, shortcut])


def aligned_xception(input_shape: tuple[int, int, int], middle_blocks: int = 16, width_multiplier: float = 1.0,
                     name: str = "xception65") -> keras.Model:
    """The aligned Xception feature extractor (no classifier), native output stride 32."""
    def width(filters):
        return _channels(filters, width_multiplier)

    inputs = keras.Input(shape=input_shape, name="input")
    x = keras.layers.Conv2D(width(32), 3, strides=2, padding="same", use_bias=False, name="entry_conv1")(inputs)
    x = keras.layers.BatchNormalization(name="entry_conv1_bn")(x)
    x = keras.layers.ReLU(name="entry_conv1_relu")(x)
    x = keras.layers.Conv2D(width(64), 3, padding="same", use_bias=False, name="entry_conv2")(x)
    x = keras.layers.BatchNormalization(name="entry_conv2_bn")(x)
    x = keras.layers.ReLU(name="entry_conv2_relu")(x)
    for index, filters in enumerate((128, 256, 728), start=1):
        x = _block(x, (width(filters),) * 3, f"entry_block{index}", stride=2, residual="conv")
    for index in range(1, middle_blocks + 1):
        x = _block(x, (width(728),) * 3, f"middle_block{index}", stride=1, residual="identity")
    x = _block(x, (width(728), width(1024), width(1024)), "exit_block1", stride=2, residual="conv")
    for index, filters in enumerate((1536, 1536, 2048), start=1):
        x = _separable(x, width(filters), f"exit_sepconv{index}")
    return keras.Model(inputs, x, name=name)
