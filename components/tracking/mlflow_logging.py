"""MLflow helpers: open an experiment with a sensible artifact location, log a pipeline run, register.

Framework adapters call these; they know nothing of TFX. A tracking URI that is empty means "a
SQLite store in the given output folder", with artifacts in a folder beside it, so that a local
run never writes `mlruns/` into the current directory.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import mlflow
from mlflow.tracking import MlflowClient

from components.core.hyperparams import ConfigError

logger = logging.getLogger(__name__)


def local_tracking_uri(output_dir: str | os.PathLike[str]) -> str:
    """The default store of a local run: `sqlite:///<output_dir>/mlflow.db`."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Checks that the server of an http(s) tracking URI accepts connections, in one short try, so that
    a run with an unreachable MLflow server stops before it starts instead of at its last step (where
    MLflow's client would retry for minutes). Other URIs (a SQLite or file store) are not checked.

    Raises:
        ConfigError: Naming the URI and why it cannot be reached.
    """
    parsed = urllib.parse.urlparse(tracking_uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            pass
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ConfigError(f"runtime.mlflow_tracking_uri {tracking_uri}: MLflow server unreachable ({reason}); "
                          "nothing was run") from None


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """Returns the id of experiment `name`, creating it (with `artifact_location`) when missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


@dataclass
class RunRecord:
    """Everything one pipeline run logs to MLflow.

    Attributes:
        run_name: MLflow run name.
        params: flat configuration (`section.key -> value`).
        metrics: final figures (e.g. evaluation mIoU per slice).
        history: per-epoch training curves (`name -> [value per epoch]`).
        tags: free-form tags (blessing, push destination, TFX run id).
        artifacts: local folders to upload (`artifact path -> local dir`).
        register_as: registered-model name; the artifact at `registered_artifact` becomes a version.
        registered_artifact: artifact path (a key of `artifacts`) registered as the model version.
    """

    run_name: str
    params: Mapping[str, object] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    history: Mapping[str, list[float]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)
    register_as: str | None = None
    registered_artifact: str | None = None


def log_run(tracking_uri: str, experiment: str, record: RunRecord,
            artifact_location: str | None = None) -> tuple[str, str | None]:
    """Logs `record` as one MLflow run and optionally registers its model.

    Args:
        tracking_uri: MLflow tracking URI (a server or a database URI).
        experiment: experiment name, created when missing.
        record: what to log.
        artifact_location: artifact root of a newly created experiment (for database stores).

    Returns:
        (run id, registered model version or None).
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = ensure_experiment(client, experiment, artifact_location)
    run = client.create_run(experiment_id, run_name=record.run_name, tags=dict(record.tags))
    run_id = run.info.run_id
    try:
        now_ms = int(time.time() * 1000)
        params = [mlflow.entities.Param(key, str(value)) for key, value in record.params.items()]
        metrics = [mlflow.entities.Metric(key, float(value), now_ms, 0) for key, value in record.metrics.items()]
        for name, values in record.history.items():
            metrics.extend(mlflow.entities.Metric(f"train/{name}", float(value), now_ms, epoch)
                           for epoch, value in enumerate(values))
        for start in range(0, max(len(params), len(metrics)), 100):
            client.log_batch(run_id, metrics=metrics[start:start + 100], params=params[start:start + 100])
        for artifact_path, local_dir in record.artifacts.items():
            client.log_artifacts(run_id, local_dir, artifact_path=artifact_path)
        version = None
        if record.register_as and record.registered_artifact:
            version = register_model_version(client, record.register_as,
                                             f"{run.info.artifact_uri}/{record.registered_artifact}", run_id)
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id, version


def register_model_version(client: MlflowClient, name: str, source: str, run_id: str) -> str:
    """Creates registered model `name` when missing and adds `source` as a new version of it."""
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, source=source, run_id=run_id)
    logger.info("Registered %s version %s", name, version.version)
    return str(version.version)
