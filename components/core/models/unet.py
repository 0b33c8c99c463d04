"""U-Net (Ronneberger et al., 2015) for semantic segmentation, written against tf-keras.

The encoder halves the resolution `depth` times with two 3x3 conv-BN-ReLU blocks per stage; the
decoder upsamples with transposed convolutions and concatenates the matching encoder features.
The head is a 1x1 convolution producing per-pixel logits (no softmax), always in float32 so that
the model stays numerically safe under mixed precision.
"""

from __future__ import annotations

import tf_keras as keras


def conv_block(inputs, filters: int, name: str):
    """Two 3x3 convolutions, each followed by batch normalisation and ReLU."""
    x = inputs
    for index in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn{index}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{index}")(x)
    return x


def build_unet(input_shape: tuple[int, int, int], num_classes: int, base_filters: int = 16,
               depth: int = 3) -> keras.Model:
    """Builds a U-Net mapping images to per-pixel class logits.

    Args:
        input_shape: (height, width, channels); height and width must be divisible by 2**depth.
        num_classes: number of output classes (the ignore label is not a class).
        base_filters: filters of the first stage; doubled at every down-sampling.
        depth: number of down-sampling stages.

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
        x = conv_block(x, base_filters * 2 ** level, name=f"down{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = conv_block(x, base_filters * 2 ** depth, name="bridge")
    for level in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(base_filters * 2 ** level, 2, strides=2, name=f"up{level}_transpose")(x)
        x = keras.layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = conv_block(x, base_filters * 2 ** level, name=f"up{level}")
    logits = keras.layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name="unet")
