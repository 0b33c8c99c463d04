"""U-Net (Ronneberger et al., 2015) for semantic segmentation, written against tf-keras.

The encoder halves the resolution `depth` times with two 3x3 conv-BN-ReLU blocks per stage; the
decoder upsamples with transposed convolutions and concatenates the matching encoder features.
The head is a 1x1 convolution producing per-pixel logits (no softmax), always in float32 so that
the model stays numerically safe under mixed precision.

Options, each off by default:
- `separable`: depthwise-separable 3x3 convolutions (a depthwise 3x3 then a pointwise 1x1) instead of
  full ones, as in MobileNet: far fewer weights and multiply-adds per block;
- `skip_attention`: squeeze-and-excitation (Hu et al. 2018) on every skip connection: the skip's
  channels are rescaled by sigmoid(W2 relu(W1 mean_hw(skip))) before the concatenation, W1 reducing the
  channels by `se_ratio`;
- `dilated_bottom`: the bottleneck block's convolutions dilated by 2, widening its receptive field
  without another down-sampling.
"""

from __future__ import annotations

import tf_keras as keras

SE_RATIO = 4
"""Channel reduction of the squeeze-and-excitation bottleneck."""


def conv_block(inputs, filters: int, name: str, separable: bool = False, dilation_rate: int = 1,
               batch_norm_momentum: float = 0.99):
    """Two 3x3 convolutions (full or depthwise-separable), each followed by batch normalisation and ReLU."""
    x = inputs
    for index in (1, 2):
        if separable:
            x = keras.layers.SeparableConv2D(filters, 3, padding="same", dilation_rate=dilation_rate, use_bias=False,
                                             name=f"{name}_sepconv{index}")(x)
        else:
            x = keras.layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation_rate, use_bias=False,
                                    name=f"{name}_conv{index}")(x)
        x = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=f"{name}_bn{index}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{index}")(x)
    return x


def squeeze_excitation(inputs, name: str, ratio: int = SE_RATIO):
    """Rescales each channel of `inputs` by a gate computed from the channels' global means."""
    channels = inputs.shape[-1]
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(inputs)
    gate = keras.layers.Conv2D(max(1, channels // ratio), 1, activation="relu", name=f"{name}_reduce")(gate)
    gate = keras.layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_expand")(gate)
    return keras.layers.Multiply(name=f"{name}_scale")([inputs, gate])


def build_unet(input_shape: tuple[int, int, int], num_classes: int, base_filters: int = 16, depth: int = 3,
               separable: bool = False, skip_attention: bool = False, dilated_bottom: bool = False,
               batch_norm_momentum: float = 0.99) -> keras.Model:
    """Builds a U-Net mapping images to per-pixel class logits.

    Args:
        input_shape: (height, width, channels); height and width must be divisible by 2**depth.
        num_classes: number of output classes (the ignore label is not a class).
        base_filters: filters of the first stage; doubled at every down-sampling.
        depth: number of down-sampling stages.
        separable: depthwise-separable convolutions in every block.
        skip_attention: squeeze-and-excitation on every skip connection.
        dilated_bottom: dilation rate 2 in the bottleneck block.
        batch_norm_momentum: momentum of every batch normalisation's moving statistics.

    Returns:
        A `keras.Model` named "unet" with output shape (batch, height, width, num_classes).

    Raises:
        ValueError: the spatial size is not divisible by 2**depth.
    """
    height, width = input_shape[0], input_shape[1]
    if height % (2 ** depth) or width % (2 ** depth):
        raise ValueError(f"U-Net input {height}x{width} must be divisible by 2**depth = {2 ** depth}")
    inputs = keras.Input(shape=input_shape, name="image")
    skips = []
    x = inputs
    for level in range(depth):
        # The first block sees the 3 image channels: a separable convolution gains nothing there.
        x = conv_block(x, base_filters * 2 ** level, name=f"down{level}", separable=separable and level > 0,
                       batch_norm_momentum=batch_norm_momentum)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = conv_block(x, base_filters * 2 ** depth, name="bridge", separable=separable,
                   dilation_rate=2 if dilated_bottom else 1, batch_norm_momentum=batch_norm_momentum)
    for level in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(base_filters * 2 ** level, 2, strides=2, name=f"up{level}_transpose")(x)
        skip = squeeze_excitation(skips[level], name=f"skip{level}_se") if skip_attention else skips[level]
        x = keras.layers.Concatenate(name=f"up{level}_concat")([x, skip])
        x = conv_block(x, base_filters * 2 ** level, name=f"up{level}", separable=separable,
                       batch_norm_momentum=batch_norm_momentum)
    logits = keras.layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name="unet")
