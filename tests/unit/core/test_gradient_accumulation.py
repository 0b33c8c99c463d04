"""Gradient accumulation: 4 micro-batches of 2 take the same optimizer step as one batch of 8 (where the
loss and network make them equivalent), under mixed precision too, and the U-Net trains with it."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.core.gradient_accumulation import GradientAccumulationModel, with_gradient_accumulation
from components.core.losses import MaskedSparseCategoricalCrossentropy

NUM_CLASSES = 3


def _network(seed: int, dtype_policy: str = "float32") -> keras.Model:
    """A small fully convolutional net without batch statistics (so micro-batches are exactly equivalent)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(dtype_policy)
    try:
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((8, 8, 3))
        hidden = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
        outputs = keras.layers.Conv2D(NUM_CLASSES, 1, dtype="float32")(hidden)
        return keras.Model(inputs, outputs)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _data():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 8, 8, 3)).astype(np.float32)
    masks = rng.integers(0, NUM_CLASSES, size=(8, 8, 8))  # no ignored pixel: micro-batch means average exactly
    return images, masks


def _trained_weights(accumulation_steps: int, optimizer, steps: int = 3, dtype_policy: str = "float32"):
    model = with_gradient_accumulation(_network(seed=1, dtype_policy=dtype_policy), accumulation_steps)
    if dtype_policy == "mixed_float16":
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=MaskedSparseCategoricalCrossentropy())
    images, masks = _data()
    losses = [float(model.train_on_batch(images, masks)) for _ in range(steps)]
    return [weight.numpy() for weight in model.weights], losses, int(model.optimizer.iterations.numpy())


@pytest.mark.parametrize("make_optimizer", [lambda: keras.optimizers.SGD(0.5, momentum=0.9),
                                            lambda: keras.optimizers.Adam(0.01)], ids=["sgd", "adam"])
def test_four_micro_batches_of_two_take_the_step_of_one_batch_of_eight(make_optimizer):
    whole, whole_losses, whole_steps = _trained_weights(1, make_optimizer())
    accumulated, accumulated_losses, accumulated_steps = _trained_weights(4, make_optimizer())
    assert whole_steps == accumulated_steps == 3  # one optimizer step per batch
    for expected, actual in zip(whole, accumulated):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(accumulated_losses, whole_losses, rtol=1e-4)
    assert not np.allclose(whole[0], _network(seed=1).weights[0].numpy())  # it did train


def test_accumulation_under_mixed_precision_matches_within_float16_rounding():
    whole, _, _ = _trained_weights(1, keras.optimizers.SGD(0.5), dtype_policy="mixed_float16")
    accumulated, _, _ = _trained_weights(4, keras.optimizers.SGD(0.5), dtype_policy="mixed_float16")
    for expected, actual in zip(whole, accumulated):
        np.testing.assert_allclose(actual, expected, rtol=2e-2, atol=2e-3)


def test_one_step_keeps_the_model_and_more_share_its_layers():
    network = _network(seed=2)
    assert with_gradient_accumulation(network, 1) is network
    accumulating = with_gradient_accumulation(network, 2)
    assert isinstance(accumulating, GradientAccumulationModel) and accumulating.accumulation_steps == 2
    assert [id(weight) for weight in accumulating.weights] == [id(weight) for weight in network.weights]
    with pytest.raises(ValueError, match="accumulation_steps must be at least 1"):
        GradientAccumulationModel(inputs=network.inputs, outputs=network.outputs, accumulation_steps=0)
