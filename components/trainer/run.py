"""TFX Trainer adapter: `run_fn` trains the segmentation model and exports the serving SavedModel.

The Trainer reads the raw ingested examples (Transform runs with `materialize=False`) and applies
the tf.Transform graph in the input pipeline. Training runs inside a `tf.distribute` strategy
(MirroredStrategy over the local devices). The exported model carries the transform graph, so it
takes serialized `tf.train.Example`s:
- `serving_default`: examples -> `probabilities` [B, H, W, C] and `class_ids` [B, H, W];
- `transform_features`: examples -> the transformed features (`image`, `mask`, `size_bucket`);
- `slice_features`: examples -> `size_bucket`, the derived feature TFMA slices on.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components.core import features
from components.core.keras_metrics import SegmentationMeanIoU
from components.core.label_maps import load_label_map
from components.core.losses import MaskedSparseCategoricalCrossentropy
from components.core.models.unet import build_unet
from pipeline.config import PipelineConfig

logger = logging.getLogger(__name__)

HISTORY_FILE = "history.json"
TRAINER_SECTIONS = ("model", "training")  # the configuration sections training depends on


def make_dataset(file_pattern, data_accessor: tfx.components.DataAccessor,
                 transform_output: tft.TFTransformOutput, batch_size: int, training: bool) -> tf.data.Dataset:
    """Reads raw examples, applies the transform graph and yields (image, mask) batches.

    Args:
        file_pattern: TFRecord file patterns of one split.
        data_accessor: the Trainer's data accessor.
        transform_output: the Transform component's output.
        batch_size: global batch size.
        training: shuffle, repeat and augment (random horizontal flips of image and mask together).
    """
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, shuffle=training, num_epochs=None),
        transform_output.raw_metadata.schema)
    transform_layer = transform_output.transform_features_layer()

    def to_pair(raw):
        transformed = transform_layer(raw)
        return transformed[features.IMAGE], transformed[features.MASK]

    dataset = dataset.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
    if training:
        dataset = dataset.map(random_horizontal_flip, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def random_horizontal_flip(images, masks):
    """Flips each (image, mask) pair of a batch left-right with probability 1/2, both alike."""
    flip = tf.random.uniform([tf.shape(images)[0]]) < 0.5
    images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    masks = tf.where(flip[:, None, None], tf.reverse(masks, axis=[2]), masks)
    return images, masks


def build_model(config: PipelineConfig, num_classes: int) -> keras.Model:
    """Builds and compiles the configured network (call inside the strategy scope)."""
    height, width = config.model.image_size
    model = build_unet((height, width, 3), num_classes, base_filters=config.model.base_filters,
                       depth=config.model.depth, weights=config.model.weights)
    total_steps = config.training.epochs * config.training.steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(config.training.learning_rate, total_steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=MaskedSparseCategoricalCrossentropy(ignore_label=255),
                  metrics=[SegmentationMeanIoU(num_classes)])
    return model


def export_serving_model(model: keras.Model, transform_output: tft.TFTransformOutput, export_dir: str) -> None:
    """Saves `model` with the transform graph and the two example-taking signatures."""
    model.tft_layer = transform_output.transform_features_layer()
    raw_feature_spec = transform_output.raw_feature_spec()
    serving_feature_spec = {name: spec for name, spec in raw_feature_spec.items()
                            if name not in features.LABEL_FEATURES}
    examples_spec = tf.TensorSpec([None], tf.string, name="examples")
    # The Python parameters are named like the tensor ("examples"), so that `signature(examples=...)`
    # binds the structured signature at once. With another name TensorFlow first fails to bind it,
    # formats every input tensor into the discarded error message (~5 ms per batch of 16 images) and
    # only then falls back to the flat signature. (TFMA passes the batch positionally and always
    # takes that fallback: a loaded signature's structured inputs are keyword-only.)

    @tf.function(input_signature=[examples_spec])
    def serve_examples(examples):
        parsed = tf.io.parse_example(examples, serving_feature_spec)
        image = model.tft_layer(parsed)[features.IMAGE]
        logits = model(image, training=False)
        return {features.PROBABILITIES: tf.nn.softmax(logits),
                features.CLASS_IDS: tf.argmax(logits, axis=-1)}

    @tf.function(input_signature=[examples_spec])
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, raw_feature_spec))

    @tf.function(input_signature=[examples_spec])
    def slice_features(examples):
        parsed = tf.io.parse_example(examples, serving_feature_spec)
        return {features.SIZE_BUCKET: model.tft_layer(parsed)[features.SIZE_BUCKET]}

    model.save(export_dir, save_format="tf", signatures={
        "serving_default": serve_examples.get_concrete_function(),
        "transform_features": transform_features.get_concrete_function(),
        "slice_features": slice_features.get_concrete_function(),
    })


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """TFX Trainer entry point: trains under a distribution strategy and exports the model.

    `fn_args.custom_config` holds the `model` and `training` sections of `PipelineConfig.to_dict()` and
    the label map's name (only what training depends on, so that TFX's cache key is exactly that).
    """
    sections = {name: fn_args.custom_config[name] for name in TRAINER_SECTIONS}
    config = PipelineConfig.from_dict(sections)
    label_map = load_label_map(fn_args.custom_config["label_map"])
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    training = config.training

    strategy = tf.distribute.MirroredStrategy()
    logger.info("Training %s on %d replica(s): %d epochs x %d steps, batch %d",
                config.model.architecture, strategy.num_replicas_in_sync, training.epochs,
                training.steps_per_epoch, training.batch_size)
    train_data = make_dataset(fn_args.train_files, fn_args.data_accessor, transform_output,
                              training.batch_size, training=True)
    eval_data = make_dataset(fn_args.eval_files, fn_args.data_accessor, transform_output,
                             training.batch_size, training=False)
    with strategy.scope():
        model = build_model(config, label_map.num_classes)

    best_weights = os.path.join(fn_args.model_run_dir, "checkpoints", "best.weights")
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(fn_args.model_run_dir, "backup")),
        keras.callbacks.ModelCheckpoint(best_weights, monitor="val_miou",
                                        mode="max", save_best_only=True, save_weights_only=True),
        keras.callbacks.TensorBoard(os.path.join(fn_args.model_run_dir, "logs"), update_freq="epoch"),
    ]
    history = model.fit(train_data, epochs=training.epochs, steps_per_epoch=training.steps_per_epoch,
                        validation_data=eval_data, validation_steps=training.eval_steps,
                        callbacks=callbacks, verbose=2)
    if tf.io.gfile.exists(best_weights + ".index"):
        model.load_weights(best_weights)
        logger.info("Restored the weights of the epoch with the best validation mIoU")
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as history_file:
        json.dump({name: [float(v) for v in values] for name, values in history.history.items()}, history_file)
    export_serving_model(model, transform_output, fn_args.serving_model_dir)
    logger.info("Exported the serving model to %s", fn_args.serving_model_dir)
