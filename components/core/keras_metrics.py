"""tf-keras metrics for segmentation, usable in `model.compile` and by TFMA's `MetricConfig`.

`SegmentationMeanIoU` accumulates a confusion matrix over every pixel it sees (pixels labelled with
the ignore label excluded) and reports mIoU = mean over classes with a non-zero denominator of
TP / (TP + FP + FN) -- over the whole evaluation set, never a per-batch average.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from components.core.label_maps import IGNORE_LABEL


class SegmentationMeanIoU(keras.metrics.MeanIoU):
    """Mean IoU over class-id maps from per-pixel scores (argmax), ignoring `ignore_class`.

    Accepts one weight per example (TFMA passes example weights of shape [B] or [B, 1]) and
    broadcasts it to that example's pixels.
    """

    def __init__(self, num_classes: int, ignore_class: int = IGNORE_LABEL, name: str = "miou", dtype=None):
        super().__init__(num_classes=num_classes, ignore_class=ignore_class, sparse_y_pred=False,
                         name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.convert_to_tensor(y_true)
        y_pred = tf.convert_to_tensor(y_pred)
        y_true = tf.reshape(y_true, tf.shape(y_pred)[:-1])
        if sample_weight is not None:
            sample_weight = tf.cast(tf.reshape(sample_weight, [-1]), self._dtype)
            pixels_per_example = tf.reduce_prod(tf.shape(y_true)[1:])
            sample_weight = tf.repeat(sample_weight, pixels_per_example)
        return super().update_state(y_true, y_pred, sample_weight)

    def get_config(self):
        return {"num_classes": self.num_classes, "ignore_class": self.ignore_class,
                "name": self.name, "dtype": self.dtype}
