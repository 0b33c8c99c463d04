"""Segmentation losses that respect the ignore label.

`MaskedSparseCategoricalCrossentropy` averages the per-pixel cross-entropy over the pixels whose
label is a class, so void/ignore pixels (255) neither contribute to the loss nor dilute it. It is
never implemented by remapping 255 to background, a bug seen in published VOC training scripts.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from components.core.label_maps import IGNORE_LABEL


class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Mean cross-entropy over pixels whose label is not `ignore_label`.

    loss = sum_{p: y_p != ignore} -log softmax(logits_p)[y_p] / |{p: y_p != ignore}|
    (zero when every pixel of the batch is ignored).
    """

    def __init__(self, ignore_label: int = IGNORE_LABEL, name: str = "masked_sparse_categorical_crossentropy",
                 reduction: str = keras.losses.Reduction.SUM_OVER_BATCH_SIZE):
        super().__init__(name=name, reduction=reduction)
        self.ignore_label = ignore_label

    def call(self, y_true, y_pred):
        labels = tf.cast(tf.reshape(y_true, tf.shape(y_pred)[:-1]), tf.int32)
        valid = tf.not_equal(labels, self.ignore_label)
        safe_labels = tf.where(valid, labels, tf.zeros_like(labels))
        per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=safe_labels, logits=tf.cast(y_pred, tf.float32))
        valid = tf.cast(valid, tf.float32)
        axes = tf.range(1, tf.rank(per_pixel))
        per_image_sum = tf.reduce_sum(per_pixel * valid, axis=axes)
        # Per image: mean over its valid pixels, weighted by its share of the batch's valid pixels,
        # so the batch reduction yields the mean over all valid pixels of the batch.
        valid_per_image = tf.reduce_sum(valid, axis=axes)
        batch_size = tf.cast(tf.shape(per_pixel)[0], tf.float32)
        return per_image_sum * batch_size / tf.maximum(tf.reduce_sum(valid_per_image), 1.0)

    def get_config(self):
        return {**super().get_config(), "ignore_label": self.ignore_label}
