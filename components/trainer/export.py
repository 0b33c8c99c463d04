"""The exported serving SavedModel: the Keras model with the tf.Transform graph and example-taking signatures.

The exported model carries the transform graph, so it takes serialized `tf.train.Example`s:
- `serving_default`: examples -> `probabilities` [B, H, W, C], `class_ids` [B, H, W] (at the model's
  input size) and `content_size` [B, 2] (the rows and columns of those that show the image: crop to
  them, then resize to the image's size, `components.core.metrics.prediction_at_image_size`);
- `transform_features`: examples -> the transformed features (`image`, `mask`, `size_bucket`, ...);
- `slice_features`: examples -> `size_bucket`, the derived feature TFMA slices on.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.core import features

SIGNATURES = ("serving_default", "transform_features", "slice_features")


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
        transformed = model.tft_layer(parsed)
        logits = model(transformed[features.IMAGE], training=False)
        return {features.PROBABILITIES: tf.nn.softmax(logits),
                features.CLASS_IDS: tf.argmax(logits, axis=-1),
                features.CONTENT_SIZE: transformed[features.CONTENT_SIZE]}

    @tf.function(input_signature=[examples_spec])
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, raw_feature_spec))

    @tf.function(input_signature=[examples_spec])
    def slice_features(examples):
        parsed = tf.io.parse_example(examples, serving_feature_spec)
        return {features.SIZE_BUCKET: model.tft_layer(parsed)[features.SIZE_BUCKET]}

    # The tf.functions themselves (with input signatures), not their concrete functions: a concrete function
    # that captured distributed variables cannot be saved under MultiWorkerMirroredStrategy.
    model.save(export_dir, save_format="tf", signatures={
        "serving_default": serve_examples,
        "transform_features": transform_features,
        "slice_features": slice_features,
    })
