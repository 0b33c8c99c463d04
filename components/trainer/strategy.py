"""The Trainer's `tf.distribute` strategy, from the environment: one machine or several workers.

- `TF_CONFIG` naming more than one task in its cluster (workers, chief): `MultiWorkerMirroredStrategy`
  (collective all-reduce over every worker's devices). It must be created before any other TensorFlow
  op of the process.
- Otherwise `MirroredStrategy` over the local GPUs; without GPUs, over the CPU's logical devices (one
  unless the process split the CPU into several, as the two-replica test does).

The global batch is split evenly across replicas. Every worker takes part in saving the model (the
save is a collective op); only the chief's copy lands in the serving folder, the others write to a
temporary folder that is removed afterwards.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from components.core.hyperparams import ConfigError


def cluster_spec() -> dict:
    """The `cluster` of `TF_CONFIG` ({} when unset)."""
    return json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})


def task() -> tuple[str, int]:
    """This process's (task type, index) from `TF_CONFIG`; ("chief", 0) when unset."""
    found = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    return found.get("type", "chief"), int(found.get("index", 0))


def is_multi_worker() -> bool:
    """Whether `TF_CONFIG` names more than one task."""
    return sum(len(tasks) for kind, tasks in cluster_spec().items() if kind in ("chief", "worker")) > 1


def make_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when `TF_CONFIG` names several workers, else MirroredStrategy."""
    if is_multi_worker():
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MirroredStrategy([device.name for device in tf.config.list_logical_devices("CPU")])


def is_chief() -> bool:
    """The chief writes the model, the history and the logs: the `chief` task, or worker 0 without one."""
    kind, index = task()
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster_spec())


def worker_export_dir(export_dir: str) -> str:
    """Where this worker saves the model: `export_dir` on the chief, a temporary folder elsewhere."""
    if is_chief():
        return export_dir
    kind, index = task()
    return os.path.join(os.path.dirname(export_dir.rstrip("/")), f".{kind}-{index}-export")


def check_global_batch(batch_size: int, replicas: int, accumulation_steps: int = 1) -> int:
    """Returns `batch_size` when it splits evenly across `replicas`, and each replica's share into
    `accumulation_steps` micro-batches.

    Raises:
        ConfigError: naming `training.batch_size`, when it is smaller than or not a multiple of the replicas
            times the accumulation steps.
    """
    if batch_size < replicas or batch_size % replicas:
        raise ConfigError(f"'training.batch_size' {batch_size} must be a multiple of the {replicas} replicas "
                          "(the global batch is split evenly across them)")
    if (batch_size // replicas) % accumulation_steps:
        raise ConfigError(f"'training.batch_size' {batch_size} must be a multiple of the {replicas} replicas times "
                          f"training.gradient_accumulation_steps {accumulation_steps} (each replica's batch is "
                          "split into that many micro-batches)")
    return batch_size


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns on every worker only once all of them have called it (a one-value all-reduce across the
    cluster): e.g. after `fit`, so that no worker reads what the chief writes at the end of its last
    epoch before the chief has written it. Immediate on one machine."""
    if is_multi_worker():
        strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)
