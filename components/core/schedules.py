"""Learning-rate schedules of the segmentation recipes, as tf-keras `LearningRateSchedule`s.

`WarmupSchedule` ramps the rate linearly from 0 to the peak over `warmup_steps`, then follows one of:
- "poly": peak * (1 - t / T) ** power (DeepLab; power 0.9), where t counts steps after the warm-up and
  T = total_steps - warmup_steps;
- "cosine": peak * (1 + cos(pi * t / T)) / 2;
- "constant": peak.
The rate at step `total_steps` and after is that of the decay's end (0 for poly and cosine).
"""

from __future__ import annotations

import math

import tensorflow as tf
import tf_keras as keras

SCHEDULE_NAMES = ("cosine", "poly", "constant")


@keras.utils.register_keras_serializable(package="segpipe")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up followed by poly, cosine or constant decay (see the module docstring)."""

    def __init__(self, name: str, peak_learning_rate: float, total_steps: int, warmup_steps: int = 0,
                 power: float = 0.9):
        if name not in SCHEDULE_NAMES:
            raise ValueError(f"unknown schedule {name!r}; expected one of {', '.join(SCHEDULE_NAMES)}")
        if total_steps < 1 or not 0 <= warmup_steps < total_steps:
            raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
        self.name = name
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.power = float(power)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = tf.constant(self.peak_learning_rate, tf.float32)
        decay_steps = float(self.total_steps - self.warmup_steps)
        progress = tf.clip_by_value((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        if self.name == "poly":
            decayed = peak * tf.pow(1.0 - progress, self.power)
        elif self.name == "cosine":
            decayed = peak * 0.5 * (1.0 + tf.cos(math.pi * progress))
        else:
            decayed = peak
        if self.warmup_steps == 0:
            return decayed
        warming = peak * step / float(self.warmup_steps)
        return tf.where(step < self.warmup_steps, warming, decayed)

    def get_config(self):
        return {"name": self.name, "peak_learning_rate": self.peak_learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "power": self.power}
