"""The `MlflowTracker` TFX component: logs one pipeline run to MLflow and registers a pushed model.

It runs last, after the Pusher, and records the configuration (as parameters), the ingestion counts
and data-validation anomalies of every split, the training curves
(from the Trainer's model-run folder), the evaluation figures of every slice, the blessing, where the
model was pushed, the evaluation report (tables, confusion matrix, overlays) and, when the model was
pushed, the serving SavedModel as an artifact registered as a new version of the pipeline's model.
"""

import json
import os
from typing import TypedDict

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import standard_artifacts

from components import artifacts
from components.artifacts import SegmentationReport
from components.evaluation_reader import load_slice_metrics
from components.tracking.mlflow_logging import RunRecord, log_run

SERVING_MODEL_ARTIFACT = "serving_model"
REPORT_ARTIFACT = "evaluation_report"
DATA_ARTIFACT = "data"


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
    tracking_uri: tfx.dsl.components.Parameter[str],
    experiment: tfx.dsl.components.Parameter[str],
    registered_model: tfx.dsl.components.Parameter[str],
    run_params: tfx.dsl.components.Parameter[str],
    data_root: tfx.dsl.components.Parameter[str],
    training_epochs: tfx.dsl.components.Parameter[int],
    learning_rate: tfx.dsl.components.Parameter[float],
    miou_threshold: tfx.dsl.components.Parameter[float],
    artifact_location: tfx.dsl.components.Parameter[str] = "",
) -> TrackerOutputs:
    """Logs the run; returns the MLflow run id and the registered version ("" when not pushed).

    `run_params` is the configuration (flat); `data_root`, `training_epochs`, `learning_rate` and
    `miou_threshold` are the values this run used (a compiled pipeline's runtime parameters), logged
    under their configuration keys in its place (`RUN_VALUE_PARAMS`).
    """
    history_path = os.path.join(model_run.uri, artifacts.HISTORY_FILE)
    history = json.loads(tf.io.gfile.GFile(history_path).read()) if tf.io.gfile.exists(history_path) else {}
    blessed = bool(blessing.get_int_custom_property("blessed"))
    pushed = bool(pushed_model.get_int_custom_property("pushed"))
    destination = pushed_model.get_string_custom_property("pushed_destination") if pushed else ""
    params = {**json.loads(run_params), **dict(zip(RUN_VALUE_PARAMS, (data_root, training_epochs, learning_rate,
                                                                     miou_threshold)))}
    record = RunRecord(
        run_name=f"{experiment}-{model.id or 'local'}",
        params=params,
        metrics={**data_metrics(examples.uri, anomalies.uri), **load_slice_metrics(evaluation.uri)},
        history=history,
        tags={"segpipe.blessed": str(blessed).lower(), "segpipe.pushed": str(pushed).lower(),
              "segpipe.pushed_destination": destination, "segpipe.model_uri": model.uri},
        artifacts={REPORT_ARTIFACT: report.uri, **({SERVING_MODEL_ARTIFACT: destination} if pushed else {})},
        register_as=registered_model if pushed else None,
        registered_artifact=SERVING_MODEL_ARTIFACT if pushed else None,
    )
    run_id, version = log_run(tracking_uri, experiment, record, artifact_location=artifact_location or None)
    return {"run_id": run_id, "model_version": version or ""}
