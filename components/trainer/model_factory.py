"""The Trainer's model, optimizer, loss and metrics, built from the `model` and `training` config sections.

The learning rate is given for a reference global batch (`training.optimizer.reference_batch_size`, by
default the configured batch) and scaled linearly to the actual global batch (Goyal et al. 2017,
"Accurate, Large Minibatch SGD"), so that running the same recipe on more replicas keeps its meaning.
"""

from __future__ import annotations

import numpy as np
import tf_keras as keras
from tensorflow.python.autograph.core import config as autograph_config

from components.core import features
from components.core.config import OptimizerConfig, PipelineConfig
from components.core.hyperparams import ConfigError
from components.core.keras_metrics import SegmentationMeanIoU
from components.core.label_maps import LabelMap
from components.core import losses
from components.core.gradient_accumulation import with_gradient_accumulation
from components.core.models.builder import build_model
from components.core.schedules import WarmupSchedule


def keep_autograph_off_tf_keras() -> None:
    """Adds tf-keras to the packages TensorFlow's autograph does not convert (idempotent).

    Autograph's rules exclude the `keras` package but not its Keras 2 copy `tf_keras` (TF 2.16), so the
    first `fit` of a process converts tf-keras' whole train step and optimizer code, statement by
    statement: ~20 s here, ~4x the rest of a tiny run's first step. tf-keras is Keras 2's code, written
    to run unconverted as `keras` always did; excluding it changes no computation.
    """
    rule = autograph_config.DoNotConvert("tf_keras")
    if not any(isinstance(existing, autograph_config.DoNotConvert) and existing.matches("tf_keras.x")
               for existing in autograph_config.CONVERSION_RULES):
        autograph_config.CONVERSION_RULES = (rule,) + tuple(autograph_config.CONVERSION_RULES)


def scaled_learning_rate(optimizer: OptimizerConfig, global_batch_size: int) -> float:
    """The peak learning rate for `global_batch_size` (linear scaling from the reference batch)."""
    reference = optimizer.reference_batch_size or global_batch_size
    return optimizer.learning_rate * global_batch_size / reference


def build_optimizer(config: PipelineConfig, total_steps: int, global_batch_size: int) -> keras.optimizers.Optimizer:
    """The configured optimizer with its learning-rate schedule over `total_steps`."""
    optimizer, schedule = config.training.optimizer, config.training.schedule
    peak = scaled_learning_rate(optimizer, global_batch_size)
    if config.training.reduce_on_plateau_patience:
        learning_rate = peak  # constant (validated): a plain rate, so ReduceLROnPlateau can lower it
    else:
        learning_rate = WarmupSchedule(schedule.name, peak, total_steps,
                                       warmup_steps=min(schedule.warmup_steps, total_steps - 1), power=schedule.power)
    if optimizer.name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=optimizer.momentum,
                                    weight_decay=optimizer.weight_decay or None)
    if optimizer.weight_decay:
        return keras.optimizers.AdamW(learning_rate, weight_decay=optimizer.weight_decay)
    return keras.optimizers.Adam(learning_rate)


def class_weights_of(config: PipelineConfig, transform_constants: dict[str, np.ndarray],
                     label_map: LabelMap) -> np.ndarray | None:
    """The class weights `training.loss.class_weights` asks for, as the transform's analyzers computed them
    (`transform_constants`, see `data.read_transform_constants`); None when the loss is not class-weighted.

    Raises:
        ConfigError: naming the key, when the transform output has no such statistics or they are empty.
    """
    weighting = config.training.loss.class_weights
    if weighting == "none":
        return None
    key = "'training.loss.class_weights'"
    name = features.CLASS_WEIGHTS[weighting]
    if name not in transform_constants:
        raise ConfigError(f"{key} {weighting!r} needs the class statistics of the transform output, "
                          f"which has no {name!r} feature (a transform graph of an older preprocessing_fn?)")
    weights = np.asarray(transform_constants[name], np.float32)
    if weights.shape != (label_map.num_classes,) or not np.any(weights > 0):
        raise ConfigError(f"{key} {weighting!r}: the training split has no labelled pixel to weigh "
                          f"(class weights {weights.tolist()})")
    return weights


def build_loss(config: PipelineConfig, label_map: LabelMap, class_weights: np.ndarray | None = None) -> keras.losses.Loss:
    """The configured loss (`class_weights` from `class_weights_of`); the label map's ignore label never counts."""
    loss = config.training.loss
    return losses.build_loss(loss.name, label_map.ignore_label, dice_weight=loss.dice_weight,
                             boundary_weight=loss.boundary_weight, boundary_width=loss.boundary_width,
                             class_weights=class_weights)


def _build_with_policy(config: PipelineConfig, num_classes: int, policy: str) -> keras.Model:
    """The configured network whose layers compute under the Keras dtype `policy` (the global policy is
    only set while they are built: each layer keeps the policy it was built with)."""
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        return with_gradient_accumulation(build_model(config.model, num_classes),
                                          config.training.gradient_accumulation_steps)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def float32_copy(model: keras.Model, config: PipelineConfig, num_classes: int) -> keras.Model:
    """`model` itself when it computes in float32; else the same network built under the float32 policy
    with `model`'s weights (mixed-precision variables are float32 already): what is exported, so that
    serving and TFLite conversion never meet float16 or bfloat16 computations."""
    if config.training.mixed_precision == "float32":
        return model
    copy = _build_with_policy(config, num_classes, "float32")
    for source, target in zip(model.layers, copy.layers, strict=True):
        target.set_weights(source.get_weights())
    return copy


def build_compiled_model(config: PipelineConfig, label_map: LabelMap, total_steps: int,
                         global_batch_size: int, class_weights: np.ndarray | None = None) -> keras.Model:
    """Builds and compiles the configured network (call inside the strategy scope)."""
    keep_autograph_off_tf_keras()
    model = _build_with_policy(config, label_map.num_classes, config.training.mixed_precision)
    # Under mixed_float16, compile wraps the optimizer in a LossScaleOptimizer (dynamic loss scaling).
    model.compile(optimizer=build_optimizer(config, total_steps, global_batch_size),
                  loss=build_loss(config, label_map, class_weights),
                  metrics=[SegmentationMeanIoU(label_map.num_classes, ignore_class=label_map.ignore_label)],
                  jit_compile=config.training.jit_compile)
    return model
