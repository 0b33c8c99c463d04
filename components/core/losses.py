"""Segmentation losses that respect the ignore label.

Every loss here leaves out the pixels labelled with the ignore label (255): they neither contribute nor
dilute. It is never implemented by remapping 255 to background, a bug seen in published VOC training
scripts. With V the pixels of the batch whose label y_p is a class, p_p = softmax(logits_p):

- `MaskedSparseCategoricalCrossentropy`: sum_{p in V} w_p * -log p_p[y_p] / sum_{p in V} w_p, where the
  pixel weight w_p is the weight of its class c_{y_p} (1 without class weights; class-weighted
  cross-entropy, normalised by the weights as PyTorch's `CrossEntropyLoss(weight=...)` is) times the
  boundary factor: 1, or with `boundary_weight` > 1 it is `boundary_weight` for pixels within
  `boundary_width` pixels of a label change (void bands included) and 1 elsewhere (boundary-weighted
  cross-entropy: thin structures and object edges weigh more).
- `SoftDiceLoss`: 1 - mean_c (2 sum_{p in V} p_p[c] [y_p = c] + eps) / (sum_{p in V} p_p[c] + sum_{p in V} [y_p = c] + eps),
  over every class c, computed over the whole batch (Milletari et al. 2016, V-Net), eps = 1.
- `CrossEntropyDiceLoss`: cross-entropy (class-weighted if given) + `dice_weight` * soft Dice.

Each returns one value per image whose batch mean (Keras' SUM_OVER_BATCH_SIZE reduction) is the loss
above, so it works in `model.compile`. Under a distribution strategy each replica computes it on its own
part of the batch, and the replicas' losses are averaged.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from components.core.label_maps import IGNORE_LABEL

LOSS_NAMES = ("cross_entropy", "boundary_cross_entropy", "dice", "cross_entropy_dice")


def _labels_and_valid(y_true, y_pred, ignore_label: int):
    labels = tf.cast(tf.reshape(y_true, tf.shape(y_pred)[:-1]), tf.int32)
    valid = tf.not_equal(labels, ignore_label)
    return tf.where(valid, labels, tf.zeros_like(labels)), tf.cast(valid, tf.float32)


def _per_image_share(per_pixel_sum, normaliser):
    """Per-image values whose batch mean is sum(per_pixel_sum) / normaliser."""
    batch_size = tf.cast(tf.shape(per_pixel_sum)[0], tf.float32)
    return per_pixel_sum * batch_size / tf.maximum(normaliser, 1e-12)


def boundary_pixels(labels, width: int):
    """1.0 where a pixel lies within `width` pixels (Chebyshev) of a different label, else 0.0.

    Args:
        labels: int [B, H, W] label map, the ignore label included (void bands mark object edges in VOC).
        width: half-size of the square window.
    """
    values = tf.cast(labels, tf.float32)[..., None]
    window = 2 * width + 1
    highest = tf.nn.max_pool2d(values, window, strides=1, padding="SAME")
    lowest = -tf.nn.max_pool2d(-values, window, strides=1, padding="SAME")
    return tf.cast(tf.not_equal(highest, lowest), tf.float32)[..., 0]


class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Mean cross-entropy over pixels whose label is not `ignore_label`, optionally boundary-weighted.

    loss = sum_{p: y_p != ignore} w_p * -log softmax(logits_p)[y_p] / sum_{p: y_p != ignore} w_p
    (zero when every pixel of the batch is ignored); w_p = 1 unless `boundary_weight` > 1 (module docstring).
    """

    def __init__(self, ignore_label: int = IGNORE_LABEL, boundary_weight: float = 1.0, boundary_width: int = 3,
                 class_weights=None, name: str = "masked_sparse_categorical_crossentropy",
                 reduction: str = keras.losses.Reduction.SUM_OVER_BATCH_SIZE):
        super().__init__(name=name, reduction=reduction)
        self.ignore_label = ignore_label
        self.boundary_weight = float(boundary_weight)
        self.boundary_width = int(boundary_width)
        self.class_weights = None if class_weights is None else [float(weight) for weight in class_weights]

    def call(self, y_true, y_pred):
        labels, valid = _labels_and_valid(y_true, y_pred, self.ignore_label)
        per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(y_pred, tf.float32))
        weights = valid
        if self.class_weights is not None:
            weights = valid * tf.gather(tf.constant(self.class_weights, tf.float32), labels)
        if self.boundary_weight != 1.0:
            raw_labels = tf.cast(tf.reshape(y_true, tf.shape(y_pred)[:-1]), tf.int32)
            weights = valid * (1.0 + (self.boundary_weight - 1.0) * boundary_pixels(raw_labels, self.boundary_width))
        axes = tf.range(1, tf.rank(per_pixel))
        per_image_sum = tf.reduce_sum(per_pixel * weights, axis=axes)
        return _per_image_share(per_image_sum, tf.reduce_sum(weights))

    def get_config(self):
        return {**super().get_config(), "ignore_label": self.ignore_label, "boundary_weight": self.boundary_weight,
                "boundary_width": self.boundary_width, "class_weights": self.class_weights}


class SoftDiceLoss(keras.losses.Loss):
    """1 - the mean over classes of the soft Dice coefficient over the batch's non-ignored pixels."""

    def __init__(self, ignore_label: int = IGNORE_LABEL, smooth: float = 1.0, name: str = "soft_dice",
                 reduction: str = keras.losses.Reduction.SUM_OVER_BATCH_SIZE):
        super().__init__(name=name, reduction=reduction)
        self.ignore_label = ignore_label
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        labels, valid = _labels_and_valid(y_true, y_pred, self.ignore_label)
        num_classes = tf.shape(y_pred)[-1]
        probabilities = tf.nn.softmax(tf.cast(y_pred, tf.float32)) * valid[..., None]
        truth = tf.one_hot(labels, num_classes, dtype=tf.float32) * valid[..., None]
        spatial = tf.range(0, tf.rank(probabilities) - 1)
        intersection = tf.reduce_sum(probabilities * truth, axis=spatial)
        total = tf.reduce_sum(probabilities, axis=spatial) + tf.reduce_sum(truth, axis=spatial)
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
        loss = 1.0 - tf.reduce_mean(dice)
        return tf.fill([tf.shape(y_pred)[0]], loss)

    def get_config(self):
        return {**super().get_config(), "ignore_label": self.ignore_label, "smooth": self.smooth}


class CrossEntropyDiceLoss(keras.losses.Loss):
    """Masked cross-entropy + `dice_weight` * soft Dice."""

    def __init__(self, ignore_label: int = IGNORE_LABEL, dice_weight: float = 1.0, class_weights=None,
                 name: str = "cross_entropy_dice", reduction: str = keras.losses.Reduction.SUM_OVER_BATCH_SIZE):
        super().__init__(name=name, reduction=reduction)
        self.ignore_label = ignore_label
        self.dice_weight = float(dice_weight)
        self._cross_entropy = MaskedSparseCategoricalCrossentropy(ignore_label, class_weights=class_weights)
        self._dice = SoftDiceLoss(ignore_label)

    def call(self, y_true, y_pred):
        return self._cross_entropy.call(y_true, y_pred) + self.dice_weight * self._dice.call(y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "ignore_label": self.ignore_label, "dice_weight": self.dice_weight,
                "class_weights": self._cross_entropy.class_weights}


def build_loss(name: str, ignore_label: int = IGNORE_LABEL, dice_weight: float = 1.0, boundary_weight: float = 5.0,
               boundary_width: int = 3, class_weights=None) -> keras.losses.Loss:
    """The loss called `name` (one of `LOSS_NAMES`); `class_weights` (one per class) weigh its cross-entropy.

    Raises:
        ValueError: an unknown name, or class weights for the Dice loss (which has no cross-entropy).
    """
    if name == "cross_entropy":
        return MaskedSparseCategoricalCrossentropy(ignore_label, class_weights=class_weights)
    if name == "boundary_cross_entropy":
        return MaskedSparseCategoricalCrossentropy(ignore_label, boundary_weight=boundary_weight,
                                                   boundary_width=boundary_width, class_weights=class_weights)
    if name == "dice":
        if class_weights is not None:
            raise ValueError("class weights weigh a cross-entropy: the 'dice' loss has none")
        return SoftDiceLoss(ignore_label)
    if name == "cross_entropy_dice":
        return CrossEntropyDiceLoss(ignore_label, dice_weight=dice_weight, class_weights=class_weights)
    raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSS_NAMES)}")
