"""The exported serving SavedModel: the Keras model with the tf.Transform graph inside, and its signatures.

A client sends raw bytes only; the transform graph the model was trained with runs inside:
- `serving_default` (`SERVE_IMAGES`): encoded images (JPEG or PNG, any size up to
  `export.max_image_pixels`), a [B] string tensor `images` -> `class_ids` [B, H, W] int64 and
  `probabilities` [B, H, W, C] at each image's own size (H x W the largest in the batch; beyond an image's
  own `image_size` [B, 2], class ids are the ignore label and probabilities 0). The model's prediction at
  its input size is taken back to the size the image was scaled to (`content_size`: padding dropped, or
  edge pixels repeated where "fill" cropped the image; `preprocessing.input_indices_of_content`) and
  resized back, nearest for class ids and bilinear for probabilities;
- `serve_examples` (`SERVE_EXAMPLES`): serialized `tf.train.Example`s -> `probabilities` [B, h, w, C],
  `class_ids` [B, h, w] at the model's input size (h, w) and `content_size` [B, 2] (the size the image
  was scaled to; `components.core.metrics.prediction_at_image_size` maps a prediction back with it), for
  TFMA and batch inference;
- `transform_features`: examples -> the transformed features (`image`, `mask`, `content_size`, ...);
- `slice_features`: examples -> `size_bucket`, the derived feature TFMA slices on.

Beside the SavedModel, `segpipe_model.json` (`MODEL_INFO_FILE`) says what a client needs to read the
output: the label map, class names and colours, the input size and the ignore label.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.artifacts import MODEL_INFO_FILE, SERVE_EXAMPLES, SERVE_IMAGES, SLICE_FEATURES, TRANSFORM_FEATURES
from components.core import features, preprocessing
from components.core.label_maps import LabelMap

SIGNATURES = (SERVE_IMAGES, SERVE_EXAMPLES, TRANSFORM_FEATURES, SLICE_FEATURES)
IMAGE_SIZE_OUTPUT = "image_size"


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encoded_image_size(encoded: tf.Tensor) -> tf.Tensor:
    """(height, width) int32 [2] of one encoded image, read from its header for JPEG and PNG (no decoding;
    a PNG's IHDR chunk holds width then height as big-endian 32-bit integers at bytes 16-23), by
    decoding it for other formats."""
    def png_size():
        header = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, 16, 8), tf.uint8), tf.int32)
        width = header[0] * 16777216 + header[1] * 65536 + header[2] * 256 + header[3]
        height = header[4] * 16777216 + header[5] * 65536 + header[6] * 256 + header[7]
        return tf.stack([height, width])

    def decoded_size():
        return tf.shape(tf.io.decode_image(encoded, channels=3, expand_animations=False))[:2]

    is_png = tf.logical_and(tf.equal(tf.strings.substr(encoded, 0, 8), PNG_SIGNATURE),
                            tf.strings.length(encoded) >= 24)
    return tf.cond(tf.io.is_jpeg(encoded), lambda: tf.image.extract_jpeg_shape(encoded)[:2],
                   lambda: tf.cond(is_png, png_size, decoded_size))


def export_serving_model(model: keras.Model, transform_output: tft.TFTransformOutput, export_dir: str,
                         label_map: LabelMap, max_image_pixels: int) -> None:
    """Saves `model` with the transform graph, the image-bytes and example-taking signatures and the model info."""
    model.tft_layer = transform_output.transform_features_layer()
    raw_feature_spec = transform_output.raw_feature_spec()
    serving_feature_spec = {name: spec for name, spec in raw_feature_spec.items()
                            if name not in features.LABEL_FEATURES}
    examples_spec = tf.TensorSpec([None], tf.string, name="examples")
    images_spec = tf.TensorSpec([None], tf.string, name="images")
    ignore_label = label_map.ignore_label
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

    @tf.function(input_signature=[images_spec])
    def serve_images(images):
        sizes = tf.map_fn(encoded_image_size, images, fn_output_signature=tf.TensorSpec([2], tf.int32))
        pixels = tf.cast(sizes[:, 0], tf.int64) * tf.cast(sizes[:, 1], tf.int64)
        checks = [tf.debugging.assert_less_equal(
            pixels, tf.constant(max_image_pixels, tf.int64),
            message=f"an image has more pixels than export.max_image_pixels = {max_image_pixels}")]
        with tf.control_dependencies(checks):
            # As `tf.io.parse_example` gives the raw features (one value each, variable-length in the schema).
            raw = {features.IMAGE_ENCODED: _one_value_each(tf.identity(images)),
                   features.IMAGE_HEIGHT: _one_value_each(tf.cast(sizes[:, 0], tf.int64)),
                   features.IMAGE_WIDTH: _one_value_each(tf.cast(sizes[:, 1], tf.int64))}
        transformed = model.tft_layer(raw)
        logits = model(transformed[features.IMAGE], training=False)
        largest = tf.reduce_max(sizes, axis=0)
        input_size = tuple(int(side) for side in model.input_shape[1:3])

        def to_image_size(inputs):
            image_logits, content, size = inputs
            rows, cols = preprocessing.input_indices_of_content(content, input_size)
            scaled = tf.gather(tf.gather(image_logits, rows, axis=0), cols, axis=1)
            resized = tf.image.resize(tf.nn.softmax(scaled), size, method="bilinear")
            # Class ids from the logits, as `serve_examples` takes them: the argmax of float32 softmax
            # probabilities can differ from the logits' where two classes nearly tie.
            class_ids = tf.argmax(tf.image.resize(scaled, size, method="nearest"), axis=-1)
            pad = [[0, largest[0] - size[0]], [0, largest[1] - size[1]]]
            return (tf.pad(resized, pad + [[0, 0]]),
                    tf.pad(class_ids - ignore_label, pad) + ignore_label)

        num_classes = logits.shape[-1]
        resized_probabilities, class_ids = tf.map_fn(
            to_image_size, (logits, tf.cast(transformed[features.CONTENT_SIZE], tf.int32), sizes),
            fn_output_signature=(tf.TensorSpec([None, None, num_classes], tf.float32),
                                 tf.TensorSpec([None, None], tf.int64)))
        return {features.PROBABILITIES: resized_probabilities, features.CLASS_IDS: class_ids,
                IMAGE_SIZE_OUTPUT: sizes}

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
        SERVE_IMAGES: serve_images,
        SERVE_EXAMPLES: serve_examples,
        TRANSFORM_FEATURES: transform_features,
        SLICE_FEATURES: slice_features,
    })
    with tf.io.gfile.GFile(os.path.join(export_dir, MODEL_INFO_FILE), "w") as info:
        json.dump(model_info(model, label_map, max_image_pixels), info, indent=2)


def _one_value_each(values: tf.Tensor) -> tf.SparseTensor:
    """A [B] tensor as the [B, 1] sparse tensor `tf.io.parse_example` makes of a one-value VarLenFeature."""
    count = tf.shape(values, out_type=tf.int64)[0]
    indices = tf.stack([tf.range(count), tf.zeros([count], tf.int64)], axis=1)
    return tf.SparseTensor(indices, values, tf.stack([count, tf.constant(1, tf.int64)]))


def model_info(model: keras.Model, label_map: LabelMap, max_image_pixels: int) -> dict:
    """What a client of the exported model needs to read its output (written as `MODEL_INFO_FILE`)."""
    return {
        "label_map": label_map.name,
        "class_names": list(label_map.class_names),
        "class_colors": [list(color) for color in label_map.colors],
        "ignore_label": label_map.ignore_label,
        "input_size": [int(side) for side in model.input_shape[1:3]],
        "max_image_pixels": int(max_image_pixels),
        "signatures": {SERVE_IMAGES: "images: encoded JPEG/PNG [B] -> class_ids, probabilities at each image's size",
                       SERVE_EXAMPLES: "examples: serialized tf.train.Example [B] -> class_ids, probabilities, "
                                       "content_size at the input size"},
    }
