"""Reads an Evaluator (TFMA) output back into plain per-slice metrics, for the adapters that use it.

The report step rebuilds the overall `EvaluationResult` from it; the tracker logs every scalar to MLflow.
"""

from __future__ import annotations

import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.writers import eval_config_writer


def load_metrics_by_slice(evaluation_uri: str) -> dict[tuple, dict]:
    """Reads the candidate model's metrics of every slice from an Evaluator output.

    Returns:
        `{slice key: {metric name: float or numpy array}}`; the overall slice's key is `()`, others are
        tuples of `(feature, value)` pairs. When a baseline was evaluated too, its own metrics are left
        out and the candidate's differences to it appear as `<metric>_diff` (summary metrics only).
    """
    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    candidate = next((spec.name for spec in eval_config.model_specs if not spec.is_baseline), None)
    result = tfma.load_eval_result(evaluation_uri, model_name=candidate or None)
    by_slice = {}
    for slice_key, outputs in result.slicing_metrics:
        values = by_slice.setdefault(tuple((name, _slice_value(value)) for name, value in slice_key), {})
        for sub_keys in outputs.values():
            for metrics in sub_keys.values():
                for name, value in metrics.items():
                    if name.endswith("_diff") and "/" in name:
                        continue
                    if "doubleValue" in value:
                        values[name] = float(value["doubleValue"])
                    elif "arrayValue" in value:
                        values[name] = _array(value["arrayValue"])
    return by_slice


def load_slice_metrics(evaluation_uri: str) -> dict[str, float]:
    """Flat, MLflow-friendly names for the candidate's scalar metrics.

    Returns:
        Every scalar of the overall slice as `{metric: value}` (per-class ones included), and the
        slice-level summaries (names without a `/`) of the other slices as
        `{slice/<feature>:<value>/<metric>: value}`.
    """
    flat = {}
    for slice_key, metrics in load_metrics_by_slice(evaluation_uri).items():
        prefix = "".join(f"slice/{name}:{value}/" for name, value in slice_key)
        for name, value in metrics.items():
            if isinstance(value, float) and (not slice_key or "/" not in name):
                flat[f"{prefix}{name}"] = value
    return flat


def _slice_value(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _array(array_value: dict) -> np.ndarray:
    for field in ("int64Values", "int32Values", "float64Values", "float32Values"):
        if field in array_value:
            return np.asarray([float(v) if "float" in field else int(v) for v in array_value[field]]
                              ).reshape([int(d) for d in array_value.get("shape", [-1])])
    raise ValueError(f"unsupported TFMA array value: {sorted(array_value)}")
