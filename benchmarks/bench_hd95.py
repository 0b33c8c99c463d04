"""Benchmark: HD95 of one class on a 2048x1024 mask pair, segpipe vs medpy (baseline), same masks, same run.

The masks are synthetic but shaped like a real class: the ground truth is a set of smooth random
blobs covering about a quarter of a Cityscapes-sized frame; the prediction follows the same field
disturbed by smoother noise (boundaries a few pixels off, partly coinciding), with a few missed parts
and spurious blobs, as a trained but imperfect model produces. Both implementations run on the same
arrays, several repeats each; the medians are compared, and the two results must agree to 1e-9.

Run from the repository root: ``.venv/bin/python benchmarks/bench_hd95.py``. The last line printed is
one JSON object: ``value`` and ``baseline`` are median milliseconds per HD95 call (segpipe's
``hausdorff_distances`` and ``medpy.metric.binary.hd95``); ``ratio = baseline / value`` is the
speed-up (higher is better).
"""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np
from medpy.metric.binary import hd95 as medpy_hd95
from scipy import ndimage

from components.core.hausdorff import hausdorff_distances

HEIGHT, WIDTH = 1024, 2048
OUR_REPEATS = 21
BASELINE_REPEATS = 7
SEED = 2012


def _smooth_field(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian-smoothed noise of the frame size (computed at 1/4 scale)."""
    coarse = ndimage.gaussian_filter(rng.standard_normal((HEIGHT // 4, WIDTH // 4)), sigma / 4)
    field = ndimage.zoom(coarse, 4, order=1)
    return (field - field.mean()) / field.std()


def realistic_mask_pair(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(gt_mask, pred_mask)``: one class's ground truth and an imperfect prediction of it."""
    rng = np.random.default_rng(seed)
    class_field = _smooth_field(rng, sigma=48)
    gt_mask = class_field > 0.65
    boundary_noise = _smooth_field(rng, sigma=12)
    pred_mask = class_field + 0.12 * boundary_noise > 0.65
    spurious_blobs = _smooth_field(rng, sigma=8) > 2.6
    missed_parts = _smooth_field(rng, sigma=20) > 2.2
    pred_mask = (pred_mask | spurious_blobs) & ~missed_parts
    return gt_mask, pred_mask


def _median_milliseconds(function, repeats: int) -> tuple[float, float]:
    durations, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        durations.append((time.perf_counter() - start) * 1e3)
    return statistics.median(durations), result


def main() -> None:
    gt_mask, pred_mask = realistic_mask_pair()
    print(
        f"masks {WIDTH}x{HEIGHT}: gt covers {gt_mask.mean():.1%}, prediction {pred_mask.mean():.1%}, "
        f"Dice {2 * (gt_mask & pred_mask).sum() / (gt_mask.sum() + pred_mask.sum()):.3f}; cpus={os.cpu_count()}"
    )
    hausdorff_distances(gt_mask, pred_mask)  # warm-up (imports, allocator)
    ours_ms, (_, ours_hd95) = _median_milliseconds(lambda: hausdorff_distances(gt_mask, pred_mask), OUR_REPEATS)
    baseline_ms, baseline_hd95 = _median_milliseconds(lambda: medpy_hd95(pred_mask, gt_mask), BASELINE_REPEATS)
    if abs(ours_hd95 - baseline_hd95) > 1e-9:
        raise AssertionError(f"HD95 disagrees with medpy: {ours_hd95} vs {baseline_hd95}")
    print(f"segpipe hausdorff_distances: {ours_ms:.1f} ms (median of {OUR_REPEATS}), HD95 = {ours_hd95:.6f}")
    print(
        f"medpy.metric.binary.hd95:    {baseline_ms:.1f} ms (median of {BASELINE_REPEATS}), "
        f"HD95 = {baseline_hd95:.6f}"
    )
    print(
        json.dumps(
            {
                "name": "hd95_one_class_2048x1024",
                "value": round(ours_ms, 2),
                "baseline": round(baseline_ms, 2),
                "baseline_name": "medpy.metric.binary.hd95",
                "ratio": round(baseline_ms / ours_ms, 2),
                "ratio_definition": "baseline / value (speed-up, higher is better)",
                "unit": "ms",
                "hd95": ours_hd95,
                "repeats": {"value": OUR_REPEATS, "baseline": BASELINE_REPEATS},
            }
        )
    )


if __name__ == "__main__":
    main()
