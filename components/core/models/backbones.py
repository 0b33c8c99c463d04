"""Feature extractors for encoder-decoder networks: tf-keras applications (MobileNetV2, ResNet50) and the
aligned Xception of `xception.py`, dilated to an output stride.

`build_backbone` returns a model mapping images to two feature maps:
- `low_level`: stride-4 features (the DeepLabv3+ decoder's skip connection);
- `high_level`: the last features, at the requested output stride (8 or 16) instead of the
  network's native 32.

The output stride is reached as in the DeepLab papers: once the running stride would pass it, a layer
that would down-sample keeps stride 1 (at the dilation rate in force so far) and every later spatial
convolution is dilated by the accumulated factor ("atrous convolution"), so the receptive fields and
the weights' shapes stay those of the original network and ImageNet weights still fit. This is done
on the application's own layer configuration, so the backbone is the tf-keras network, layer for layer.

Nothing is downloaded: the applications are built with `weights=None`; a local weights file of the
backbone alone (`include_top=False`, e.g. ImageNet weights a user downloaded) can be loaded into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import tf_keras as keras

from components.core.models import xception

_SPATIAL_CONVOLUTIONS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one application and where its two feature maps are.

    Attributes:
        build: builds the application without its classifier (`input_shape`, `alpha` keyword arguments).
        low_level_layer: name of the layer whose output is the stride-4 feature map.
        high_level_layer: name of the layer whose output is the last feature map.
    """

    build: Callable[..., keras.Model]
    low_level_layer: str
    high_level_layer: str


def _mobilenet_v2(input_shape, alpha):
    return keras.applications.MobileNetV2(input_shape=input_shape, alpha=alpha, include_top=False, weights=None)


def _resnet50(input_shape, alpha):
    del alpha  # ResNet50 has no width multiplier
    return keras.applications.ResNet50(input_shape=input_shape, include_top=False, weights=None)


def _xception(middle_blocks: int, name: str):
    def build(input_shape, alpha):
        return xception.aligned_xception(input_shape, middle_blocks=middle_blocks, width_multiplier=alpha, name=name)
    return build


BACKBONES: dict[str, BackboneSpec] = {
    # MobileNetV2 (Sandler et al. 2018), as DeepLab's mobile configuration (tensorflow/models
    # research/deeplab, `_MOBILENET_V2_FINAL_ENDPOINT = 'layer_18'`): the expansion of block 3 (stride 4,
    # 144 channels at alpha 1) and the output of the last inverted-residual block (320 channels). The
    # classifier's final 1x1 expansion to 1280 channels is not used: ASPP's 3x3 branches over 1280
    # channels held two thirds of the model's weights and cost more than the backbone itself.
    "mobilenetv2": BackboneSpec(_mobilenet_v2, "block_3_expand_relu", "block_16_project_BN"),
    # ResNet-50 (He et al. 2016): the end of stage 2 (stride 4, 256 channels) and of stage 5 (2048).
    "resnet50": BackboneSpec(_resnet50, "conv2_block3_out", "conv5_block3_out"),
    # Aligned Xception (Chen et al. 2018), written in `xception.py`: Xception-65 (16 middle-flow blocks),
    # DeepLabv3+'s, and Xception-41 (8), the lighter variant of DeepLab's model zoo.
    "xception65": BackboneSpec(_xception(16, "xception65"), xception.LOW_LEVEL_LAYER, xception.HIGH_LEVEL_LAYER),
    "xception41": BackboneSpec(_xception(8, "xception41"), xception.LOW_LEVEL_LAYER, xception.HIGH_LEVEL_LAYER),
}


def _native_strides(layer: dict[str, Any]) -> int:
    config = layer["config"]
    if layer["class_name"] in _SPATIAL_CONVOLUTIONS or layer["class_name"] in ("MaxPooling2D", "AveragePooling2D"):
        strides = config.get("strides", 1)
        strides = strides[0] if isinstance(strides, (list, tuple)) else strides
        return int(strides)
    return 1


def _kernel_size(layer: dict[str, Any]) -> int:
    kernel = layer["config"].get("kernel_size", layer["config"].get("pool_size", 1))
    return int(kernel[0] if isinstance(kernel, (list, tuple)) else kernel)


def _inbound_names(layer: dict[str, Any]) -> list[str]:
    return [inbound[0] for node in layer.get("inbound_nodes", []) for inbound in node]


def dilate(model: keras.Model, output_stride: int) -> keras.Model:
    """Rebuilds a functional `model` whose native stride is larger than `output_stride` so that its output
    keeps `output_stride`, by atrous convolution (see the module docstring). Weights are not copied.

    Raises:
        ValueError: a strided layer the rewrite does not know how to keep at stride 1.
    """
    config = model.get_config()
    layers = {layer["name"]: layer for layer in config["layers"]}
    # Per layer output: (stride so far, dilation rate later spatial layers use). The layers of a
    # functional config are in topological order; parallel branches (ResNet's shortcut) each see the
    # stride and rate of their own input.
    reached: dict[str, tuple[int, int]] = {}
    for layer in config["layers"]:
        inbound = [reached[name] for name in _inbound_names(layer)]
        stride, rate = max(inbound) if inbound else (1, 1)
        layer_stride = _native_strides(layer)
        spatial = layer["class_name"] in _SPATIAL_CONVOLUTIONS and _kernel_size(layer) > 1
        if layer_stride > 1 and stride * layer_stride > output_stride:
            layer["config"]["strides"] = (1, 1)
            if spatial:
                layer["config"]["dilation_rate"] = (rate, rate)
            if layer["config"].get("padding") == "valid" and _kernel_size(layer) > 1:
                # The application padded explicitly for a stride-2 window: at stride 1, pad as "same" does.
                padding_layers = [layers[name] for name in _inbound_names(layer)
                                  if layers[name]["class_name"] == "ZeroPadding2D"]
                if len(padding_layers) != 1:
                    raise ValueError(f"{model.name}: cannot keep layer {layer['name']} at stride 1")
                padding_layers[0]["config"]["padding"] = ((0, 0), (0, 0))
                layer["config"]["padding"] = "same"
            rate *= layer_stride
        elif layer_stride > 1:
            stride *= layer_stride
        elif spatial and rate > 1:
            layer["config"]["dilation_rate"] = (rate, rate)
        reached[layer["name"]] = (stride, rate)
    return keras.Model.from_config(config)


def with_batch_norm_momentum(model: keras.Model, momentum: float) -> keras.Model:
    """Rebuilds a functional `model` with every BatchNormalization's moving-average momentum set to `momentum`."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "BatchNormalization":
            layer["config"]["momentum"] = momentum
    return keras.Model.from_config(config)


def build_backbone(name: str, input_shape: tuple[int, int, int], output_stride: int = 16,
                   width_multiplier: float = 1.0, weights: str | None = None,
                   batch_norm_momentum: float | None = None) -> keras.Model:
    """Builds a dilated backbone mapping images to `[low_level, high_level]` feature maps.

    Args:
        name: a key of `BACKBONES`.
        input_shape: (height, width, channels); height and width divisible by `output_stride`.
        output_stride: 8 or 16.
        width_multiplier: MobileNetV2's alpha; the channel scale of the aligned Xception; unused by ResNet50.
        weights: a weights file of the application without its top, or None.
        batch_norm_momentum: momentum of the moving statistics of every batch normalisation; None keeps
            the application's own (MobileNetV2's 0.999 needs tens of thousands of steps to settle).

    Raises:
        ValueError: an unknown backbone or output stride.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(sorted(BACKBONES))}")
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output stride must be 8, 16 or 32, got {output_stride}")
    spec = BACKBONES[name]
    application = spec.build(input_shape, width_multiplier)
    if output_stride < 32:
        application = dilate(application, output_stride)
    if batch_norm_momentum is not None:
        application = with_batch_norm_momentum(application, batch_norm_momentum)
    if weights:
        application.load_weights(weights)
    return keras.Model(application.inputs,
                       [application.get_layer(spec.low_level_layer).output,
                        application.get_layer(spec.high_level_layer).output],
                       name=f"{name}_os{output_stride}")
