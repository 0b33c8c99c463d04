"""The `MlflowTracker` TFX component: logs a pipeline run's results to MLflow and registers a pushed model.

It runs last, after the Pusher. Given the id of the MLflow run its runner started (`mlflow_run_id`), it
logs into that run; without one (a Kubeflow run, `segpipe track`) it creates and ends a run itself. It
records the ingestion counts and data-validation anomalies of every split, the training curves (from
the Trainer's model-run folder, unless the Trainer logged them live), the evaluation figures of every
slice (`eval/miou`, `eval/city:frankfurt/miou`, per class), the TFLite models' mIoU, size and latency,
the blessing, where the model was pushed and the ML Metadata ids of the artifacts; it uploads the
evaluation report, the TFLite models, the TensorBoard logs and the push's `manifest.json`, and registers a
pushed model (a pyfunc around the pushed folder's serving SavedModel) as a new version with the `champion`
alias.

:func:`track_outputs` holds all of it for TFX artifacts, from wherever they come: the component, or the
ML Metadata of a finished run (`segpipe track`).
"""


import json
import os
from dataclasses import dataclass
from typing import TypedDict

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact as tfx_artifact
from tfx.types import standard_artifacts

from components import artifacts
from components.artifacts import SegmentationReport, TFLiteModels
from components.core import push_manifest
from components.evaluation_reader import load_slice_metrics
from components.tracking.mlflow_logging import RunRecord, ServedModel, log_run

REPORT_ARTIFACT = "evaluation_report"
TFLITE_ARTIFACT = "tflite"
TENSORBOARD_ARTIFACT = "tensorboard"
PUSH_ARTIFACT = "push"
EVAL_PREFIX = "eval/"


def data_metrics(examples_uri: str, anomalies_uri: str) -> dict[str, float]:
    """Ingestion counts per split (`data/<split>/listed|written|quarantined`) and `data/anomalies`,
    the number of features ExampleValidator flagged over all splits."""
    metrics = {}
    report_path = os.path.join(examples_uri, artifacts.INGESTION_REPORT_FILE)
    if tf.io.gfile.exists(report_path):
        report = json.loads(tf.io.gfile.GFile(report_path).read())
        for split, counts in report["splits"].items():
            for name in ("listed", "written", "quarantined"):
                metrics[f"data/{split}/{name}"] = float(counts[name])
    flagged = 0
    for path in tf.io.gfile.glob(os.path.join(anomalies_uri, "Split-*", "SchemaDiff.pb")):
        anomalies = anomalies_pb2.Anomalies.FromString(tf.io.gfile.GFile(path, "rb").read())
        flagged += len(anomalies.anomaly_info) + (1 if anomalies.HasField("dataset_anomaly_info") else 0)
    metrics["data/anomalies"] = float(flagged)
    return metrics


def evaluation_metrics(slice_metrics: dict[str, float]) -> dict[str, float]:
    """The Evaluator's figures under `eval/`: `miou` -> `eval/miou`, `slice/city:frankfurt/miou` ->
    `eval/city:frankfurt/miou` (MLflow metric names allow `:` but not `=`)."""
    return {EVAL_PREFIX + name.removeprefix("slice/"): value for name, value in slice_metrics.items()}


def tflite_metrics(tflite_uri: str) -> dict[str, float]:
    """From the TFLiteExport side JSON: per variant (and `saved_model`, the reference) `tflite/<variant>/miou`,
    `size_bytes`, `latency_ms`, `miou_drop` and `accepted` (1 or 0); nothing when there is no JSON."""
    path = os.path.join(tflite_uri, artifacts.TFLITE_METADATA_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    document = json.loads(tf.io.gfile.GFile(path).read())
    reference = document["reference"]
    metrics = {"tflite/saved_model/latency_ms": float(reference["latency_ms"])}
    if reference.get("miou") is not None:
        metrics["tflite/saved_model/miou"] = float(reference["miou"])
    for variant, figures in document["variants"].items():
        metrics[f"tflite/{variant}/accepted"] = 1.0 if figures["status"] == "accepted" else 0.0
        for name in ("miou", "size_bytes", "latency_ms", "miou_drop"):
            if figures.get(name) is not None:
                metrics[f"tflite/{variant}/{name}"] = float(figures[name])
    return metrics


def first_eval_image(examples_uri: str, eval_split: str) -> bytes:
    """The encoded image of the first example of the evaluation split (the registered model's input example)."""
    from components.core import features

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{eval_split}", "*")))
    record = next(iter(tf.data.TFRecordDataset(files[:1], compression_type="GZIP").take(1)))
    example = tf.train.Example.FromString(record.numpy())
    return example.features.feature[features.IMAGE_ENCODED].bytes_list.value[0]


@dataclass
class PipelineOutputs:
    """The TFX artifacts of one pipeline run that the tracker reads (TFX `Artifact` objects)."""

    examples: tfx_artifact.Artifact
    anomalies: tfx_artifact.Artifact
    model: tfx_artifact.Artifact
    model_run: tfx_artifact.Artifact
    evaluation: tfx_artifact.Artifact
    blessing: tfx_artifact.Artifact
    pushed_model: tfx_artifact.Artifact
    report: tfx_artifact.Artifact
    tflite_models: tfx_artifact.Artifact | None = None


@dataclass(frozen=True)
class TrackingSettings:
    """Where and under which names to log (the tracker's parameters)."""

    tracking_uri: str
    experiment: str
    registered_model: str
    run_params: dict
    eval_split: str
    artifact_location: str = ""
    mlflow_run_id: str = ""


def build_record(outputs: PipelineOutputs, settings: TrackingSettings) -> RunRecord:
    """Everything the tracker logs for `outputs` (reads the artifacts' files)."""
    history_path = os.path.join(outputs.model_run.uri, artifacts.HISTORY_FILE)
    history = json.loads(tf.io.gfile.GFile(history_path).read()) if tf.io.gfile.exists(history_path) else {}
    blessed = bool(outputs.blessing.get_int_custom_property("blessed"))
    pushed = bool(outputs.pushed_model.get_int_custom_property("pushed"))
    destination = outputs.pushed_model.get_string_custom_property("pushed_destination") if pushed else ""
    metrics = {**data_metrics(outputs.examples.uri, outputs.anomalies.uri),
               **evaluation_metrics(load_slice_metrics(outputs.evaluation.uri))}
    artifact_dirs = {REPORT_ARTIFACT: outputs.report.uri}
    tensorboard = os.path.join(outputs.model_run.uri, artifacts.TENSORBOARD_DIR)
    if tf.io.gfile.isdir(tensorboard):
        artifact_dirs[TENSORBOARD_ARTIFACT] = tensorboard
    if outputs.tflite_models is not None:
        metrics.update(tflite_metrics(outputs.tflite_models.uri))
        artifact_dirs[TFLITE_ARTIFACT] = outputs.tflite_models.uri
    if pushed and tf.io.gfile.exists(os.path.join(destination, push_manifest.MANIFEST_FILE)):
        artifact_dirs[PUSH_ARTIFACT] = os.path.join(destination, push_manifest.MANIFEST_FILE)
    ids = {f"tfx.artifact.{name}": str(getattr(outputs, name).id) for name in
           ("examples", "anomalies", "model", "model_run", "evaluation", "blessing", "pushed_model", "report",
            "tflite_models") if getattr(outputs, name) is not None and getattr(outputs, name).id}
    served = None
    if pushed:
        served = ServedModel(saved_model_dir=destination,
                             example_image=first_eval_image(outputs.examples.uri, settings.eval_split),
                             registered_name=settings.registered_model,
                             tags={"segpipe.pushed_destination": destination,
                                   "tfx.artifact.model": str(outputs.model.id or "")})
    return RunRecord(
        run_name=f"{settings.experiment}-{outputs.model.id or 'local'}",
        params=settings.run_params,
        metrics=metrics,
        history=history,
        tags={"segpipe.blessed": str(blessed).lower(), "segpipe.pushed": str(pushed).lower(),
              "segpipe.pushed_destination": destination, "segpipe.model_uri": outputs.model.uri, **ids},
        artifacts=artifact_dirs,
        served_model=served)


def track_outputs(outputs: PipelineOutputs, settings: TrackingSettings, attempts: int = 3,
                  first_delay_s: float = 2.0) -> tuple[str, str]:
    """Logs `outputs`; returns the MLflow run id and the registered version ("" when not pushed).

    Raises:
        TrackingError: the server did not answer after the retries (the pipeline's outputs are untouched).
    """
    run_id, version = log_run(settings.tracking_uri, settings.experiment, build_record(outputs, settings),
                              artifact_location=settings.artifact_location or None, run_id=settings.mlflow_run_id,
                              attempts=attempts, first_delay_s=first_delay_s)
    return run_id, version or ""


RUN_ID_OUTPUT = "run_id"
"""The tracker's output holding the MLflow run id (a String value artifact)."""


RUN_VALUE_PARAMS = ("data.data_dir", "training.epochs", "training.optimizer.learning_rate", "evaluation.miou_threshold")
"""The MLflow parameter names of the tracker's `data_root`, `training_epochs`, `learning_rate` and `miou_threshold`."""


class TrackerOutputs(TypedDict):
    """The tracker's outputs: the MLflow run id and the registered model version ("" when not pushed)."""

    run_id: str
    model_version: str


@tfx.dsl.components.component
def MlflowTracker(
    examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
    anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
    model_run: tfx.dsl.components.InputArtifact[standard_artifacts.ModelRun],
    evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
    pushed_model: tfx.dsl.components.InputArtifact[standard_artifacts.PushedModel],
    report: tfx.dsl.components.InputArtifact[SegmentationReport],
    tflite_models: tfx.dsl.components.InputArtifact[TFLiteModels],
    tracking_uri: tfx.dsl.components.Parameter[str],
    experiment: tfx.dsl.components.Parameter[str],
    registered_model: tfx.dsl.components.Parameter[str],
    run_params: tfx.dsl.components.Parameter[str],
    eval_split: tfx.dsl.components.Parameter[str],
    data_root: tfx.dsl.components.Parameter[str],
    training_epochs: tfx.dsl.components.Parameter[int],
    learning_rate: tfx.dsl.components.Parameter[float],
    miou_threshold: tfx.dsl.components.Parameter[float],
    artifact_location: tfx.dsl.components.Parameter[str] = "",
    mlflow_run_id: tfx.dsl.components.Parameter[str] = "",
) -> TrackerOutputs:
    """Logs the run; returns the MLflow run id and the registered version ("" when not pushed).

    `run_params` is the configuration (flat); `data_root`, `training_epochs`, `learning_rate` and
    `miou_threshold` are the values this run used (a compiled pipeline's runtime parameters), logged
    under their configuration keys in its place (`RUN_VALUE_PARAMS`) when the tracker creates the run
    (a run its runner started holds them from the start).
    """
    outputs = PipelineOutputs(examples=examples, anomalies=anomalies, model=model, model_run=model_run,
                              evaluation=evaluation, blessing=blessing, pushed_model=pushed_model, report=report,
                              tflite_models=tflite_models)
    params = {**json.loads(run_params), **dict(zip(RUN_VALUE_PARAMS, (data_root, training_epochs, learning_rate,
                                                                     miou_threshold)))}
    settings = TrackingSettings(tracking_uri=tracking_uri, experiment=experiment, registered_model=registered_model,
                                run_params=params, eval_split=eval_split,
                                artifact_location=artifact_location, mlflow_run_id=mlflow_run_id)
    run_id, version = track_outputs(outputs, settings)
    return {"run_id": run_id, "model_version": version}
