"""Gradient accumulation: one optimizer step on a global batch, computed as several smaller micro-batches.

`GradientAccumulationModel` is a Keras functional model whose training step splits each (per-replica)
batch into `accumulation_steps` equal micro-batches, runs forward and backward on them one after the other,
sums their gradients (each micro-batch loss divided by the count, so the sum is the mean) and applies them
once. Activations of only one micro-batch are alive at a time, which is what accumulation is for: a global
batch that does not fit in memory at once. The optimizer takes one step per batch, so `iterations`,
schedules and checkpoints count optimizer steps as without accumulation.

It is the same step as one on the whole batch when the loss is a mean over images whose micro-batch means
average to the batch mean (e.g. cross-entropy over batches without ignored pixels) and the network has
no batch statistics; with batch normalisation each micro-batch normalises with its own statistics, as
accumulation always does. Under mixed precision the loss-scaling optimizer's scaling is applied to each
micro-batch and its unscaling to each gradient; `apply_gradients` then skips non-finite steps as usual.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


class GradientAccumulationModel(keras.Model):
    """A functional model (built from another one's inputs and outputs, sharing its layers) whose
    `train_step` accumulates gradients over `accumulation_steps` micro-batches (module docstring)."""

    def __init__(self, *args, accumulation_steps: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be at least 1, got {accumulation_steps}")
        self.accumulation_steps = int(accumulation_steps)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        steps = self.accumulation_steps
        xs, ys = tf.split(x, steps), tf.split(y, steps)
        weights = tf.split(sample_weight, steps) if sample_weight is not None else [None] * steps
        optimizer = self.optimizer
        scales_loss = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
        variables = self.trainable_variables
        total = None
        for micro_x, micro_y, micro_weight in zip(xs, ys, weights):
            with tf.GradientTape() as tape:
                y_pred = self(micro_x, training=True)
                loss = self.compute_loss(micro_x, micro_y, y_pred, micro_weight)
                objective = loss / steps
                if scales_loss:
                    objective = optimizer.get_scaled_loss(objective)
            gradients = tape.gradient(objective, variables)
            if scales_loss:
                gradients = optimizer.get_unscaled_gradients(gradients)
            total = gradients if total is None else [
                accumulated if gradient is None else gradient if accumulated is None else accumulated + gradient
                for accumulated, gradient in zip(total, gradients)]
            self.compute_metrics(micro_x, micro_y, y_pred, micro_weight)
        optimizer.apply_gradients((gradient, variable) for gradient, variable in zip(total, variables)
                                  if gradient is not None)
        return self.get_metrics_result()


def with_gradient_accumulation(model: keras.Model, accumulation_steps: int) -> keras.Model:
    """`model` itself for 1 step, else a `GradientAccumulationModel` over the same layers (same weights)."""
    if accumulation_steps == 1:
        return model
    return GradientAccumulationModel(inputs=model.inputs, outputs=model.outputs, name=model.name,
                                     accumulation_steps=accumulation_steps)
