"""numpy reference of the class-weight formulas (`components.core.preprocessing`'s docstring), for tests."""

from __future__ import annotations

import numpy as np


def numpy_class_weights(masks, num_classes: int, weighting: str) -> np.ndarray:
    """Class weights of `weighting` ("inverse_frequency" or "median_frequency") from a list of 2-D masks."""
    counts = np.array([[np.sum(mask == c) for c in range(num_classes)] for mask in masks], np.float64)
    totals = counts.sum(axis=0)
    present = totals > 0
    weights = np.zeros(num_classes)
    if weighting == "inverse_frequency":
        weights[present] = totals.sum() / (present.sum() * totals[present])
    else:
        pixels_per_image = counts.sum(axis=1)
        presence_pixels = np.array([pixels_per_image[counts[:, c] > 0].sum() for c in range(num_classes)])
        frequency = totals[present] / presence_pixels[present]
        weights[present] = np.median(frequency) / frequency
    return weights
