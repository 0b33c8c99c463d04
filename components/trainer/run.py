"""TFX Trainer adapter: `run_fn` trains the configured network under a `tf.distribute` strategy and exports it.

It wires the Trainer's parts together: the input pipeline (`data`), the model, optimizer and loss
(`model_factory`), the strategy (`strategy`) and the serving export (`export`). It trains exactly the
number of steps TFX gives it (`fn_args.train_steps`, from the Trainer's `TrainArgs`),
validating every `training.steps_per_epoch` steps on `fn_args.eval_steps` batches, and writes into the
model-run folder: `checkpoints/best.weights` (best validation mIoU), `logs/` (TensorBoard) and
`history.json` (per-epoch curves, with the learning rate and the steps so far; after a resume, the epochs
run since). When its runner started an MLflow run, the chief also logs each epoch's curves there as it
ends (`live_metrics`). The exported model holds the best epoch's weights (after a resume: the best of the
epochs run since).

Resuming: the resumable checkpoint (Keras `BackupAndRestore`, every `training.checkpoint_every_steps`
steps or every epoch) lives beside the model-run folders, in `resume-<key>/`, where the key is a hash of
everything the training depends on: the input artifacts' URIs (examples, transform graph), the
`custom_config` and the step counts. TFX gives every execution a new model-run folder, so an execution
that was killed (SIGKILL, a lost machine) and run again with the same inputs and configuration (a new
execution of the same cache key) finds its predecessor's checkpoint there and continues from it instead
of epoch 1. Keras deletes the checkpoint once training ends, so a finished training is never resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx

from components import artifacts
from components.core.config import TRAINER_SECTIONS, PipelineConfig
from components.core.label_maps import load_label_map
from components.trainer import strategy as strategy_lib
from components.trainer.data import make_dataset, plan_holding, read_transform_constants
from components.trainer.export import export_serving_model
from components.trainer.live_metrics import live_logger_from_environment
from components.trainer.model_factory import build_compiled_model, class_weights_of, float32_copy

logger = logging.getLogger(__name__)

LABEL_MAP_KEY = "label_map"
"""`custom_config` key of the label map's name, beside the `TRAINER_SECTIONS`."""

MAX_IMAGE_PIXELS_KEY = "max_image_pixels"
"""`custom_config` key of `export.max_image_pixels` (the only export setting the Trainer's export uses)."""


def trainer_custom_config(config: PipelineConfig, label_map_name: str) -> dict:
    """The Trainer's `custom_config`: only what training depends on, so that TFX's cache key is exactly that."""
    return {**config.trainer_sections(), LABEL_MAP_KEY: label_map_name,
            MAX_IMAGE_PIXELS_KEY: config.export.max_image_pixels}


class StopAtStep(keras.callbacks.Callback):
    """Stops training once the optimizer has taken `total_steps` steps (mid-epoch when needed)."""

    def __init__(self, total_steps: int):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if int(keras.backend.get_value(self.model.optimizer.iterations)) >= self.total_steps:
            self.model.stop_training = True


RESUME_DIR_PREFIX = "resume-"


def resumable_backup_dir(fn_args: tfx.components.FnArgs) -> str:
    """Where this training keeps its resumable checkpoint: `<model-run folders>/resume-<key>`, the key a
    hash of the input artifacts' URIs, the custom_config and the step counts (see the module docstring)."""
    identity = {"train_files": list(fn_args.train_files), "eval_files": list(fn_args.eval_files),
                "transform_graph": fn_args.transform_graph_path, "custom_config": fn_args.custom_config,
                "train_steps": int(fn_args.train_steps), "eval_steps": int(fn_args.eval_steps)}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]
    return os.path.join(os.path.dirname(os.path.normpath(fn_args.model_run_dir)), RESUME_DIR_PREFIX + key)


class ResumeLogger(keras.callbacks.Callback):
    """Logs, at the first epoch, whether training resumed from a checkpoint (`BackupAndRestore`, which
    precedes it, has restored it by then) and at which epoch and step."""

    def __init__(self, backup_dir: str, epochs: int):
        super().__init__()
        self.backup_dir = backup_dir
        self.epochs = epochs
        self.logged = False

    def on_epoch_begin(self, epoch, logs=None):
        if self.logged:
            return
        self.logged = True
        if epoch > 0:
            logger.info("Trainer: resumed at epoch %d of %d (step %d) from the checkpoint of an interrupted "
                        "execution in %s", epoch + 1, self.epochs,
                        int(keras.backend.get_value(self.model.optimizer.iterations)), self.backup_dir)


class ProgressLogger(keras.callbacks.Callback):
    """Adds to each epoch's logs (hence to the history and TensorBoard) the optimizer steps taken so far
    (`steps`) and the learning rate at the epoch's end (`learning_rate`)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            optimizer = self.model.optimizer
            logs["steps"] = float(keras.backend.get_value(optimizer.iterations))
            logs["learning_rate"] = float(keras.backend.get_value(optimizer.learning_rate(optimizer.iterations)
                                                                  if callable(optimizer.learning_rate)
                                                                  else optimizer.learning_rate))


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """TFX Trainer entry point: trains under a distribution strategy and exports the model.

    `fn_args.custom_config` is `trainer_custom_config(...)`: the `model` and `training` sections of the
    configuration and the label map's name.
    """
    strategy = strategy_lib.make_strategy()  # before any other TensorFlow op (multi-worker needs it)
    config = PipelineConfig.from_dict({name: fn_args.custom_config[name] for name in TRAINER_SECTIONS})
    max_image_pixels = int(fn_args.custom_config.get(MAX_IMAGE_PIXELS_KEY, config.export.max_image_pixels))
    label_map = load_label_map(fn_args.custom_config[LABEL_MAP_KEY])
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    training = config.training
    global_batch = strategy_lib.check_global_batch(training.batch_size, strategy.num_replicas_in_sync,
                                                   training.gradient_accumulation_steps)
    total_steps = int(fn_args.train_steps)
    steps_per_epoch = min(training.steps_per_epoch, total_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)
    class_weights = None
    if training.loss.class_weights != "none":
        class_weights = class_weights_of(
            config, read_transform_constants(fn_args.train_files, fn_args.data_accessor, transform_output), label_map)
        logger.info("Class weights (%s, from the transform's class statistics): %s", training.loss.class_weights,
                    ", ".join(f"{name} {weight:.3g}" for name, weight in zip(label_map.class_names, class_weights)))
    if training.seed is not None:
        keras.utils.set_random_seed(training.seed)

    logger.info("Training %s on %d replica(s): %d steps (%d epochs of up to %d), global batch %d",
                config.model.architecture, strategy.num_replicas_in_sync, total_steps, epochs,
                steps_per_epoch, global_batch)
    holding = plan_holding(fn_args.train_files, config.model.image_size, training.cache_limit_mb)
    if holding.examples is not None:
        logger.info("Training examples %s in memory after their first pass (%d, %.0f MB; training.cache_limit_mb %d)",
                    "held" if holding.held else "not held", holding.examples, holding.size_mb,
                    training.cache_limit_mb)
    train_data = make_dataset(fn_args.train_files, fn_args.data_accessor, transform_output, global_batch,
                              augmentation=training.augmentation, seed=training.seed,
                              shuffle_buffer=training.shuffle_buffer, image_size=config.model.image_size,
                              held_examples=holding.held_examples)
    eval_data = make_dataset(fn_args.eval_files, fn_args.data_accessor, transform_output, global_batch)
    with strategy.scope():
        model = build_compiled_model(config, label_map, total_steps, global_batch, class_weights)

    best_weights = os.path.join(fn_args.model_run_dir, artifacts.BEST_WEIGHTS)
    backup_dir = resumable_backup_dir(fn_args)
    callbacks = [
        keras.callbacks.BackupAndRestore(backup_dir, save_freq=training.checkpoint_every_steps or "epoch"),
        ResumeLogger(backup_dir, epochs),
        keras.callbacks.ModelCheckpoint(best_weights, monitor="val_miou", mode="max", save_best_only=True,
                                        save_weights_only=True),
        ProgressLogger(),
        keras.callbacks.TensorBoard(os.path.join(fn_args.model_run_dir, artifacts.TENSORBOARD_DIR),
                                    update_freq="epoch"),
        StopAtStep(total_steps),
    ]
    live_logger = live_logger_from_environment() if strategy_lib.is_chief() else None
    if live_logger is not None:  # after ProgressLogger, which adds the learning rate to the logs
        progress = next(index for index, callback in enumerate(callbacks) if isinstance(callback, ProgressLogger))
        callbacks.insert(progress + 1, live_logger)
    if training.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_miou", mode="max",
                                                       patience=training.early_stopping_patience))
    if training.reduce_on_plateau_patience:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_miou", mode="max",
                                                           patience=training.reduce_on_plateau_patience,
                                                           factor=training.reduce_on_plateau_factor))
    history = model.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        validation_data=eval_data, validation_steps=int(fn_args.eval_steps),
                        callbacks=callbacks, verbose=2)
    if strategy_lib.is_chief():  # Keras deleted the checkpoint (training ended); its folder goes too
        with contextlib.suppress(tf.errors.NotFoundError, tf.errors.FailedPreconditionError):
            if not tf.io.gfile.listdir(backup_dir):
                tf.io.gfile.rmtree(backup_dir)
    # The chief writes the best weights at the end of an epoch; the other workers load the chief's copy
    # (they write theirs to temporary folders), only once the chief is past its last save.
    strategy_lib.barrier(strategy)
    if tf.io.gfile.exists(best_weights + ".index"):
        model.load_weights(best_weights)
        logger.info("Restored the weights of the epoch with the best validation mIoU")
    if strategy_lib.is_chief():
        with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, artifacts.HISTORY_FILE), "w") as history_file:
            json.dump({name: [float(v) for v in values] for name, values in history.history.items()}, history_file)
    export_dir = strategy_lib.worker_export_dir(fn_args.serving_model_dir)
    export_serving_model(float32_copy(model, config, label_map.num_classes), transform_output, export_dir, label_map,
                         max_image_pixels)
    if strategy_lib.is_chief():
        logger.info("Exported the serving model to %s", export_dir)
    else:
        tf.io.gfile.rmtree(export_dir)
