"""Builds the network a `ModelConfig` describes, and starts it from a whole-model checkpoint when given one.

Every architecture maps images [B, H, W, 3] to per-class logits [B, H, W, num_classes] at the input
resolution, with a float32 head.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from components.core.config import ModelConfig
from components.core.hyperparams import ConfigError
from components.core.models.deeplabv3plus import build_deeplabv3plus
from components.core.models.unet import build_unet


def build_model(config: ModelConfig, num_classes: int) -> keras.Model:
    """Builds the configured architecture (call inside a distribution strategy's scope).

    Raises:
        ConfigError: `model.init_checkpoint` names no checkpoint, or one that does not fit the model.
    """
    height, width = config.image_size
    if config.architecture == "unet":
        unet = config.unet
        model = build_unet((height, width, 3), num_classes, base_filters=unet.base_filters, depth=unet.depth,
                           separable=unet.separable, skip_attention=unet.skip_attention,
                           dilated_bottom=unet.dilated_bottom, batch_norm_momentum=unet.batch_norm_momentum)
    elif config.architecture == "deeplabv3plus":
        deeplab = config.deeplabv3plus
        backbone = deeplab.backbone
        if backbone.weights and not tf.io.gfile.exists(backbone.weights) \
                and not tf.io.gfile.exists(backbone.weights + ".index"):
            raise ConfigError(f"'model.deeplabv3plus.backbone.weights' {backbone.weights}: no such weights file")
        try:
            model = build_deeplabv3plus(
                (height, width, 3), num_classes, backbone=backbone.name, output_stride=deeplab.output_stride,
                atrous_rates=deeplab.atrous_rates, aspp_filters=deeplab.aspp_filters,
                low_level_filters=deeplab.low_level_filters, decoder_filters=deeplab.decoder_filters,
                width_multiplier=backbone.width_multiplier, backbone_weights=backbone.weights,
                batch_norm_momentum=deeplab.batch_norm_momentum, upsampling=deeplab.upsampling)
        except (ValueError, tf.errors.OpError) as error:
            if not backbone.weights:
                raise
            raise ConfigError(f"'model.deeplabv3plus.backbone.weights' {backbone.weights}: the weights do not fit "
                              f"the {backbone.name} backbone ({str(error).strip().splitlines()[0]})") from None
    else:  # ModelConfig.validate admits only the architectures above
        raise ConfigError(f"'model.architecture' {config.architecture!r} has no builder")
    if config.init_checkpoint:
        load_checkpoint(model, config.init_checkpoint, "model.init_checkpoint")
    return model


def load_checkpoint(model: keras.Model, path: str, key: str) -> None:
    """Loads a Keras weights file (TF checkpoint prefix or .h5) into `model`.

    Raises:
        ConfigError: naming `key`, when the file does not exist or its weights do not fit `model`.
    """
    if not (tf.io.gfile.exists(path) or tf.io.gfile.exists(path + ".index")):
        raise ConfigError(f"'{key}' {path}: no such weights file")
    try:
        status = model.load_weights(path)
        if hasattr(status, "assert_existing_objects_matched"):  # TF checkpoints; .h5/.keras return none
            status.assert_existing_objects_matched()
    except (ValueError, AssertionError, KeyError, OSError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"'{key}' {path}: the weights do not fit the {model.name} model ({first_line})") from None
