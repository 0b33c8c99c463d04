"""The tracker's record building: ingestion counts and anomalies from real artifact files, and one run
logged to a real MLflow server on 127.0.0.1 with its model registered under the configured name."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.tracking.component import data_metrics
from components.tracking.mlflow_logging import RunRecord, log_run
from tests.support.mlflow_server import mlflow_server


def test_data_metrics_reads_ingestion_counts_and_counts_anomalies(tmp_path):
    examples, anomalies = tmp_path / "examples", tmp_path / "anomalies"
    examples.mkdir()
    (examples / "ingestion_report.json").write_text(json.dumps({"splits": {
        "train": {"listed": 5, "written": 4, "quarantined": 1}, "val": {"listed": 2, "written": 2, "quarantined": 0}}}))
    for split, flagged in (("train", 2), ("val", 0)):
        (anomalies / f"Split-{split}").mkdir(parents=True)
        found = anomalies_pb2.Anomalies()
        for index in range(flagged):
            found.anomaly_info[f"feature{index}"].description = "unexpected"
        (anomalies / f"Split-{split}" / "SchemaDiff.pb").write_bytes(found.SerializeToString())
    assert data_metrics(str(examples), str(anomalies)) == {
        "data/train/listed": 5.0, "data/train/written": 4.0, "data/train/quarantined": 1.0,
        "data/val/listed": 2.0, "data/val/written": 2.0, "data/val/quarantined": 0.0, "data/anomalies": 2.0}


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


def test_log_run_records_everything_and_registers_a_version_under_the_model_name(tracking_uri, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "saved_model.pb").write_bytes(b"model")
    record = RunRecord(run_name="experiment-a-1", params={"training.epochs": 2, "model.unet.depth": 3},
                       metrics={"miou": 0.5}, history={"loss": [2.0, 1.5, 1.2]}, tags={"segpipe.blessed": "true"},
                       artifacts={"serving_model": str(model_dir)}, register_as="voc-unet-model",
                       registered_artifact="serving_model")
    run_id, version = log_run(tracking_uri, "experiment-a", record)
    second_id, second_version = log_run(tracking_uri, "experiment-a", record)
    assert (version, second_version) == ("1", "2")

    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"training.epochs": "2", "model.unet.depth": "3"}
    assert run.data.metrics["miou"] == 0.5
    assert [point.value for point in client.get_metric_history(run_id, "train/loss")] == [2.0, 1.5, 1.2]
    assert [point.step for point in client.get_metric_history(run_id, "train/loss")] == [0, 1, 2]
    assert run.data.tags["segpipe.blessed"] == "true"
    assert [item.path for item in client.list_artifacts(run_id, "serving_model")] == ["serving_model/saved_model.pb"]
    (registered,) = client.search_model_versions(f"run_id = '{second_id}'")
    assert (registered.name, registered.version) == ("voc-unet-model", "2")
    assert client.get_experiment_by_name("voc-unet-model") is None
