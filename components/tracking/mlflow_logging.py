"""MLflow helpers: experiments, the run that spans a pipeline run, logging results, the registry.

Framework adapters and runners call these; they know nothing of TFX. Where runs go (and whether that
server is there) is :mod:`components.tracking.targets`.

A pipeline run's MLflow run is started by the runner before the first step (:func:`start_pipeline_run`:
source, configuration, library versions, dataset inputs), filled in while the pipeline runs (the Trainer's
per-epoch curves, then the tracker's :func:`log_results`) and ended by the runner
(:func:`end_pipeline_run`), so that its duration is the pipeline's. Every call to a server is retried with
backoff (:func:`with_retries`) and then fails with a :class:`TrackingError` naming the server.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence, TypeVar

import mlflow
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelOutput, LoggedModelStatus, Metric, Param
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from mlflow.utils import mlflow_tags

from components.core.datasets.fingerprint import DatasetFingerprint
from components.tracking.targets import TrackingTarget

logger = logging.getLogger(__name__)

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
"""The experiment kind that makes MLflow's UI open the model-training view (without it MLflow 3 opens
an experiment in its GenAI view of traces and sessions)."""

CHAMPION_ALIAS = "champion"
"""The registered-model alias of the newest blessed version."""

TRAINING_CONTEXT, EVALUATION_CONTEXT = "training", "evaluation"
"""`mlflow.data.context` of the training and the evaluation split's dataset inputs."""

LIBRARIES = ("tensorflow", "tfx", "apache-beam", "tensorflow-transform", "tensorflow-model-analysis", "mlflow")
"""Distributions whose versions every run records as `version.<name>` parameters."""

T = TypeVar("T")


class TrackingError(RuntimeError):
    """An MLflow server did not answer (after the retries); the message names the server and what failed."""


@contextlib.contextmanager
def mlflow_client_settings(max_retries: int = 2, backoff_factor: int = 1, timeout_s: int = 30) -> Iterator[None]:
    """Within the block, MLflow's HTTP client gives up on a request after `max_retries` retries and
    `timeout_s` seconds each (its defaults retry for minutes), so that our own retries (:func:`with_retries`)
    decide when to give up, and it prints no "View run at" lines (the run's summary says where it is) and
    no download progress bars;
    variables the user set are left alone."""
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries),
              "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(backoff_factor),
              "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s),
              "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
              "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    added = [name for name in wanted if name not in os.environ]
    os.environ.update({name: wanted[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


CONNECTION_PROBLEMS = ("Connection refused", "Connection reset", "Connection aborted", "timed out",
                       "Name or service not known", "No route to host", "Remote end closed connection")


def short_reason(error: BaseException) -> str:
    """One short phrase for an MLflow client error: the connection problem when there is one (MLflow's
    own message is a long URL and urllib3's retry story), else the message's first 300 characters."""
    text = " ".join(str(error).split())
    problem = next((phrase for phrase in CONNECTION_PROBLEMS if phrase in text), None)
    return problem or text[:300] or type(error).__name__


def with_retries(action: Callable[[], T], what: str, tracking_uri: str, attempts: int = 3,
                 first_delay_s: float = 2.0) -> T:
    """Runs `action`; on failure waits `first_delay_s`, then twice as long each time, up to `attempts` tries.

    Raises:
        TrackingError: every try failed: "MLflow <what> failed at <uri> after N attempts: <last error>".
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as error:  # pylint: disable=broad-except  # MlflowException, requests', OS errors
            reason = short_reason(error)
            if attempt == attempts:
                raise TrackingError(f"MLflow {what} failed at {tracking_uri} after {attempts} attempts: "
                                    f"{reason}") from error
            delay = first_delay_s * 2 ** (attempt - 1)
            logger.warning("MLflow %s failed at %s (attempt %d of %d, again in %.0f s): %s", what, tracking_uri,
                           attempt, attempts, delay, reason)
            time.sleep(delay)
    raise AssertionError("unreachable")


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """Returns the id of experiment `name`, creating it (with `artifact_location`) when missing; either way
    it is of the model-training kind (tagged `mlflow.experimentKind`)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=artifact_location or None,
                                        tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING_KIND:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    return experiment.experiment_id


def library_versions() -> dict[str, str]:
    """`version.<distribution>` -> installed version, for the libraries of :data:`LIBRARIES`."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[f"version.{name}"] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[f"version.{name}"] = "not installed"
    return versions


def code_version(directory: str | os.PathLike[str]) -> str:
    """The git commit of the code in `directory` ("" when it is not in a git checkout or git is missing)."""
    try:
        completed = subprocess.run(["git", "-C", os.fspath(directory), "rev-parse", "HEAD"], capture_output=True,
                                   text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return completed.stdout.strip() if completed.returncode == 0 else ""


def dataset_inputs(fingerprint: DatasetFingerprint, train_split: str, eval_split: str) -> list[DatasetInput]:
    """The training and evaluation splits as MLflow dataset inputs: name `<dataset>/<split>`, the split's
    digest, its list file or folder as source, the pairs listed as profile."""
    inputs = []
    for split_name, context in ((train_split, TRAINING_CONTEXT), (eval_split, EVALUATION_CONTEXT)):
        split = fingerprint.split(split_name)
        dataset = Dataset(name=f"{fingerprint.name}/{split.name}", digest=split.digest, source_type="local",
                          source=json.dumps({"uri": split.source}),
                          profile=json.dumps({"num_rows": split.listed, "listed_pairs": split.listed}))
        inputs.append(DatasetInput(dataset, tags=[InputTag(mlflow_tags.MLFLOW_DATASET_CONTEXT, context)]))
    return inputs


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, object]) -> None:
    """Logs `params` (values as strings) in batches of 100, MLflow's limit per request."""
    entries = [Param(key, str(value)) for key, value in params.items()]
    for start in range(0, len(entries), 100):
        client.log_batch(run_id, params=entries[start:start + 100])


def log_metrics(client: MlflowClient, run_id: str, metrics: Sequence[Metric]) -> None:
    """Logs `metrics` in batches of 1000, MLflow's limit per request."""
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=list(metrics[start:start + 1000]))


@dataclass(frozen=True)
class PipelineRunStart:
    """What a pipeline run's MLflow run holds from its start.

    Attributes:
        experiment: experiment name (created when missing).
        run_name: MLflow run name.
        source: the command that started the run (`mlflow.source.name`).
        code_dir: the code's folder; its git commit becomes `mlflow.source.git.commit` when there is one.
        params: the flat configuration (`section.key -> value`); library versions are added.
        tags: more tags (pipeline name, dataset, fingerprint, architecture...).
        datasets: the dataset inputs (:func:`dataset_inputs`).
    """

    experiment: str
    run_name: str
    source: str
    code_dir: str
    params: Mapping[str, object] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    datasets: Sequence[DatasetInput] = ()


def start_pipeline_run(target: TrackingTarget, start: PipelineRunStart, artifact_location: str = "") -> str:
    """Creates the experiment when missing and a RUNNING run holding `start`; returns the run id.

    Raises:
        TrackingError: the server did not answer.
    """
    client = MlflowClient(tracking_uri=target.uri)
    tags = {mlflow_tags.MLFLOW_SOURCE_NAME: start.source,
            mlflow_tags.MLFLOW_SOURCE_TYPE: "LOCAL", **start.tags}
    commit = code_version(start.code_dir)
    if commit:
        tags[mlflow_tags.MLFLOW_GIT_COMMIT] = commit

    def create() -> str:
        experiment_id = ensure_experiment(client, start.experiment, artifact_location)
        run_id = client.create_run(experiment_id, run_name=start.run_name, tags=tags).info.run_id
        log_params(client, run_id, {**start.params, **library_versions()})
        if start.datasets:
            client.log_inputs(run_id, datasets=list(start.datasets))
        return run_id

    return with_retries(create, "run creation", target.uri)


def end_pipeline_run(target: TrackingTarget, run_id: str, succeeded: bool, tags: Mapping[str, str] = ()) -> None:
    """Sets `tags` and ends the run (FINISHED or FAILED). Best effort: a failure is logged, not raised
    (the caller is already reporting the pipeline's outcome)."""
    client = MlflowClient(tracking_uri=target.uri)
    try:
        for key, value in dict(tags).items():
            client.set_tag(run_id, key, value)
        client.set_terminated(run_id, "FINISHED" if succeeded else "FAILED")
    except Exception as error:  # pylint: disable=broad-except
        logger.warning("MLflow: could not end run %s at %s: %s", run_id, target.uri, short_reason(error))


@dataclass
class ServedModel:
    """A pushed model to register: the SavedModel folder and an input example (one encoded image).

    Attributes:
        saved_model_dir: the pushed serving SavedModel.
        example_image: encoded JPEG or PNG bytes, logged as the input example.
        registered_name: the registered model it becomes a version of.
        tags: tags of the logged model and the version.
    """

    saved_model_dir: str
    example_image: bytes
    registered_name: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RunRecord:
    """What the tracker logs into a pipeline run's MLflow run.

    Attributes:
        run_name: MLflow run name (used when the run is created here, see :func:`log_run`).
        params: flat configuration (`section.key -> value`), logged when the run is created here.
        metrics: final figures (e.g. evaluation mIoU per slice).
        history: per-epoch training curves (`name -> [value per epoch]`), logged as `train/<name>` unless the
            run has them already (the Trainer logs them live).
        tags: free-form tags (blessing, push destination, TFX artifact ids).
        artifacts: local folders or files to upload (`artifact path -> local path`).
        served_model: a pushed model to register as a new version with the `champion` alias, or None.
    """

    run_name: str
    params: Mapping[str, object] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    history: Mapping[str, list[float]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)
    served_model: ServedModel | None = None


TRAINING_PREFIX = "train/"
"""Prefix of the per-epoch training curves (`train/loss`, `train/val_miou`, `train/learning_rate`)."""


def log_run(tracking_uri: str, experiment: str, record: RunRecord, artifact_location: str | None = None,
            run_id: str = "", attempts: int = 3, first_delay_s: float = 2.0) -> tuple[str, str | None]:
    """Logs `record` into run `run_id` (left running: its runner ends it), or into a new run that is ended
    here when `run_id` is empty; then registers the served model, if any. Each step is retried.

    Returns:
        (run id, registered model version or None).

    Raises:
        TrackingError: a step still failed after the retries; the message names the step and the server.
    """
    client = MlflowClient(tracking_uri=tracking_uri)

    def retried(action: Callable[[], T], what: str) -> T:
        return with_retries(action, what, tracking_uri, attempts=attempts, first_delay_s=first_delay_s)

    created = not run_id
    if created:
        experiment_id = retried(lambda: ensure_experiment(client, experiment, artifact_location), "experiment lookup")
        run_id = retried(lambda: client.create_run(experiment_id, run_name=record.run_name).info.run_id,
                         "run creation")
        retried(lambda: log_params(client, run_id, {**record.params, **library_versions()}), "parameter logging")
    try:
        now_ms = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now_ms, 0) for key, value in record.metrics.items()]
        logged = retried(lambda: client.get_run(run_id).data.metrics, "run lookup")
        if not any(name.startswith(TRAINING_PREFIX) for name in logged):  # a cached or remote Trainer
            for name, values in record.history.items():
                metrics.extend(Metric(f"{TRAINING_PREFIX}{name}", float(value), now_ms, epoch)
                               for epoch, value in enumerate(values))
        retried(lambda: log_metrics(client, run_id, metrics), "metric logging")
        retried(lambda: [client.set_tag(run_id, key, value) for key, value in record.tags.items()], "tag logging")
        for artifact_path, local_path in record.artifacts.items():
            upload = client.log_artifacts if os.path.isdir(local_path) else client.log_artifact
            retried(lambda: upload(run_id, local_path, artifact_path=artifact_path), f"upload of {artifact_path}")
        version = None
        if record.served_model is not None:
            version = retried(lambda: register_served_model(client, run_id, record.served_model), "model registration")
        if created:
            retried(lambda: client.set_terminated(run_id, "FINISHED"), "run end")
    except Exception:
        if created:
            end_pipeline_run(TrackingTarget(tracking_uri), run_id, succeeded=False)
        raise
    return run_id, version


def served_model_signature():
    """The pyfunc signature: an `image` column of encoded image bytes in (outputs vary in size per image)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from components.tracking import served_model

    return ModelSignature(inputs=Schema([ColSpec("binary", served_model.IMAGE_COLUMN)]))


def pip_requirements() -> list[str]:
    """What the pyfunc model needs at load time, pinned to the versions installed here."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in ("mlflow", "tensorflow", "numpy", "pandas")]


def register_served_model(client: MlflowClient, run_id: str, served: ServedModel) -> str:
    """Saves the pyfunc model of `served` (the SavedModel and :mod:`served_model`'s code), logs it as an
    MLflow model of the run, registers it as a new version of `served.registered_name` and moves the
    `champion` alias to that version. Returns the version."""
    # MLflow's SQLAlchemy registry looks the logged model up through the *global* tracking URI, not the
    # client's: point it at this store while registering (else a SQLite store fails with "not found").
    with _use_tracking_uri(client.tracking_uri):
        return _register_served_model(client, run_id, served)


def _register_served_model(client: MlflowClient, run_id: str, served: ServedModel) -> str:
    import pandas as pd

    from components.tracking import served_model

    run = client.get_run(run_id)
    with tempfile.TemporaryDirectory(prefix="segpipe-pyfunc-") as scratch:
        local = os.path.join(scratch, "model")
        mlflow.pyfunc.save_model(
            local, python_model=served_model.__file__,
            artifacts={served_model.SAVED_MODEL_ARTIFACT: served.saved_model_dir},
            signature=served_model_signature(),
            input_example=pd.DataFrame({served_model.IMAGE_COLUMN: [served.example_image]}),
            pip_requirements=pip_requirements())
        logged = client.create_logged_model(run.info.experiment_id, name="segmentation_model", source_run_id=run_id,
                                            tags=dict(served.tags))
        client.log_model_artifacts(logged.model_id, local)
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    if not client.search_registered_models(filter_string=f"name = '{served.registered_name}'"):
        client.create_registered_model(served.registered_name)
    version = client.create_model_version(served.registered_name, source=f"models:/{logged.model_id}",
                                          run_id=run_id, tags=dict(served.tags), model_id=logged.model_id)
    client.set_registered_model_alias(served.registered_name, CHAMPION_ALIAS, version.version)
    logger.info("Registered %s version %s (alias %s)", served.registered_name, version.version, CHAMPION_ALIAS)
    return str(version.version)
