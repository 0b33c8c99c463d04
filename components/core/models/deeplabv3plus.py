"""DeepLabv3+ (Chen et al. 2018, "Encoder-Decoder with Atrous Separable Convolution"), against tf-keras.

    image -> backbone (dilated to output stride 8 or 16) -> high-level features -> ASPP
          -> upsample x(output_stride / 4) -> concat with the projected stride-4 low-level features
          -> two 3x3 conv-BN-ReLU -> 1x1 conv to class logits -> upsample x4 to the input size

ASPP (atrous spatial pyramid pooling): a 1x1 branch, three 3x3 branches dilated at `atrous_rates`
(6/12/18 at output stride 16, doubled at 8) and an image-level branch (global average pooling, 1x1
conv, upsampled back), concatenated and projected by a 1x1 conv. The low-level features are projected
to 48 channels. Every upsampling is bilinear (`UpSampling2D` with static factors, which TFLite
quantizes); global pooling is a mean, not a full-size average pooling. The logits layer and the last
upsampling are float32, so the head stays float32 under mixed precision.

Optional (`upsampling="transposed"`, the transposed-convolution decoder of the seed tutorial): the
refined stride-4 features are upsampled to the input size by two learned 3x3 transposed convolutions of
stride 2 (half and a quarter of the decoder's channels, each with batch normalisation and ReLU) and the
logits are computed there, instead of at stride 4 and upsampled bilinearly. On the synthetic data it
draws people, signs, birds and bicycles sharper (val mIoU +0.02 to +0.03 on VOC at 64x64 and Cityscapes
at 64x128, README) but not Cityscapes poles one or two pixels wide: those need features finer than the
stride-4 ones the decoder has, learned upsampling or not.
"""

from __future__ import annotations

import tf_keras as keras

from components.core.models.backbones import build_backbone

DECODER_UPSAMPLINGS = ("bilinear", "transposed")
"""How the decoder goes from stride 4 to the input size (`build_deeplabv3plus`'s `upsampling`)."""


def conv_bn_relu(inputs, filters: int, kernel_size: int, name: str, dilation_rate: int = 1,
                 batch_norm_momentum: float = 0.99):
    """A convolution (no bias), batch normalisation and ReLU."""
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", dilation_rate=dilation_rate, use_bias=False,
                            name=f"{name}_conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def effective_rates(rates: tuple[int, ...], height: int, width: int) -> tuple[int, ...]:
    """Dilation rates that compute exactly what `rates` do on a `height` x `width` map, no larger, and
    distinct where lowering would make them equal (equal rates a user gives below the map's side stay).

    With "same" padding, a 3x3 kernel dilated by a rate >= both sides of the map reads only padding
    with its eight outer taps, whatever the rate: all such rates give the same output. TensorFlow's CPU
    kernels pay for the rate itself (the gradient of a rate-18 convolution on a 4x4 map took 15x the
    undilated step here), so rates past the map's longer side are lowered to it, and a lowered rate that
    another branch already has is raised by one until it is free (6/12/18 on a 4x4 map: 4/5/6, all
    computing what 6/12/18 do). Distinct, because TensorFlow builds a dilated convolution as
    SpaceToBatchND -> convolution -> BatchToSpaceND, branches with equal rates over the same features
    share one SpaceToBatchND, and the TFLite converter then fuses none of them back into a dilated
    CONV_2D; the SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND ops it leaves are outside XNNPACK and cut the
    delegated graph in three. At real input sizes (a 513x513 crop at output stride 16 gives 33x33
    features) the rates 6/12/18 stay as they are.
    """
    longer_side = max(height, width)
    lowered: list[int] = []
    for rate in rates:
        rate = min(rate, longer_side)
        while rate in lowered and rate >= longer_side:
            rate += 1
        lowered.append(rate)
    return tuple(lowered)


def atrous_spatial_pyramid_pooling(features, filters: int, rates: tuple[int, ...], batch_norm_momentum: float = 0.99):
    """ASPP over `features` (static spatial size): 1x1, one dilated 3x3 per rate, image pooling; projected."""
    height, width = features.shape[1], features.shape[2]
    branches = [conv_bn_relu(features, filters, 1, "aspp_1x1", batch_norm_momentum=batch_norm_momentum)]
    branches += [conv_bn_relu(features, filters, 3, f"aspp_atrous{index}", dilation_rate=rate,
                              batch_norm_momentum=batch_norm_momentum)
                 for index, rate in enumerate(effective_rates(rates, height, width), start=1)]
    pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name="aspp_image_pool")(features)
    pooled = conv_bn_relu(pooled, filters, 1, "aspp_image", batch_norm_momentum=batch_norm_momentum)
    branches.append(keras.layers.UpSampling2D((height, width), interpolation="bilinear",
                                              name="aspp_image_upsample")(pooled))
    x = keras.layers.Concatenate(name="aspp_concat")(branches)
    return conv_bn_relu(x, filters, 1, "aspp_projection", batch_norm_momentum=batch_norm_momentum)


def build_deeplabv3plus(input_shape: tuple[int, int, int], num_classes: int, backbone: str = "mobilenetv2",
                        output_stride: int = 16, atrous_rates: tuple[int, ...] = (6, 12, 18),
                        aspp_filters: int = 256, low_level_filters: int = 48, decoder_filters: int = 256,
                        width_multiplier: float = 1.0, backbone_weights: str | None = None,
                        batch_norm_momentum: float = 0.9, upsampling: str = "bilinear") -> keras.Model:
    """Builds DeepLabv3+ mapping images to per-pixel class logits at the input resolution.

    Args:
        input_shape: (height, width, channels); height and width divisible by `output_stride`.
        num_classes: output classes (the ignore label is not a class).
        backbone: "mobilenetv2" or "resnet50".
        output_stride: input size / ASPP feature size, 8 or 16.
        atrous_rates: dilation rates of the three 3x3 ASPP branches (at this output stride).
        aspp_filters: channels of the ASPP branches and projection.
        low_level_filters: channels of the projected stride-4 features.
        decoder_filters: channels of the decoder's 3x3 convolutions.
        width_multiplier: MobileNetV2's alpha.
        backbone_weights: a local weights file of the backbone alone, or None (nothing is downloaded).
        batch_norm_momentum: momentum of every batch normalisation's moving statistics, backbone
            included (0.9: mmsegmentation's 0.1 in PyTorch's convention; the statistics inference
            uses must settle within a short schedule).
        upsampling: from the decoder's stride 4 to the input size: "bilinear" (the paper's) or
            "transposed" (learned; module docstring).

    Returns:
        A `keras.Model` named "deeplabv3plus" with output shape (batch, height, width, num_classes).

    Raises:
        ValueError: the input size is not divisible by the output stride, or a bad backbone, stride or
            upsampling.
    """
    if upsampling not in DECODER_UPSAMPLINGS:
        raise ValueError(f"DeepLabv3+ upsampling {upsampling!r}: expected one of {DECODER_UPSAMPLINGS}")
    height, width = input_shape[0], input_shape[1]
    if height % output_stride or width % output_stride:
        raise ValueError(f"DeepLabv3+ input {height}x{width} must be divisible by the output stride = {output_stride}")
    features = build_backbone(backbone, input_shape, output_stride, width_multiplier, backbone_weights,
                              batch_norm_momentum)
    inputs = keras.Input(shape=input_shape, name="image")
    low_level, high_level = features(inputs)
    x = atrous_spatial_pyramid_pooling(high_level, aspp_filters, atrous_rates, batch_norm_momentum)
    x = keras.layers.UpSampling2D(output_stride // 4, interpolation="bilinear", name="decoder_upsample")(x)
    low_level = conv_bn_relu(low_level, low_level_filters, 1, "decoder_low_level",
                             batch_norm_momentum=batch_norm_momentum)
    x = keras.layers.Concatenate(name="decoder_concat")([x, low_level])
    x = conv_bn_relu(x, decoder_filters, 3, "decoder_refine1", batch_norm_momentum=batch_norm_momentum)
    x = conv_bn_relu(x, decoder_filters, 3, "decoder_refine2", batch_norm_momentum=batch_norm_momentum)
    if upsampling == "transposed":
        for index, filters in enumerate((decoder_filters // 2, decoder_filters // 4), start=1):
            x = keras.layers.Conv2DTranspose(max(filters, 1), 3, strides=2, padding="same", use_bias=False,
                                             name=f"decoder_up{index}_conv")(x)
            x = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=f"decoder_up{index}_bn")(x)
            x = keras.layers.ReLU(name=f"decoder_up{index}_relu")(x)
    logits = keras.layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)
    if upsampling == "bilinear":
        logits = keras.layers.UpSampling2D(4, interpolation="bilinear", dtype="float32",
                                           name="logits_upsample")(logits)
    return keras.Model(inputs, logits, name="deeplabv3plus")
