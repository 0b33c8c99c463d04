"""The tracker's record building and MLflow logging, against a real MLflow server on 127.0.0.1: ingestion
counts and anomalies from real artifact files, the experiment's kind, a pipeline run's start (source,
parameters, library versions, dataset inputs), live per-epoch curves from a tf-keras callback, results
logged into a running run, retries that end in one error naming the server, and training that goes on
when the server is away."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.core.datasets.fingerprint import DatasetFingerprint, SplitFingerprint
from components.tracking.component import data_metrics, evaluation_metrics
from components.tracking.mlflow_logging import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    PipelineRunStart,
    RunRecord,
    TrackingError,
    dataset_inputs,
    end_pipeline_run,
    ensure_experiment,
    log_run,
    mlflow_client_settings,
    start_pipeline_run,
)
from components.tracking.targets import TrackingTarget
from tests.support.mlflow_server import free_loopback_port, mlflow_server

REPOSITORY_ROOT = __file__.rsplit("/tests/", 1)[0]


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


def test_evaluation_metrics_are_named_eval_slice_metric():
    assert evaluation_metrics({"miou": 0.5, "iou/cat": 0.25, "slice/city:frankfurt/miou": 0.75}) == {
        "eval/miou": 0.5, "eval/iou/cat": 0.25, "eval/city:frankfurt/miou": 0.75}


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


FINGERPRINT = DatasetFingerprint(name="pascal_voc", root="/data/VOC2012", splits=(
    SplitFingerprint("train", "/data/VOC2012/ImageSets/Segmentation/train.txt", 6, "a" * 16),
    SplitFingerprint("val", "/data/VOC2012/ImageSets/Segmentation/val.txt", 2, "b" * 16)))


def test_experiments_are_of_the_model_training_kind_new_or_existing(tracking_uri):
    client = MlflowClient(tracking_uri)
    created = ensure_experiment(client, "kind-new", None)
    assert client.get_experiment(created).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    older = client.create_experiment("kind-older")  # as an earlier segpipe created it: no kind
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(older).tags
    assert ensure_experiment(client, "kind-older", None) == older
    assert client.get_experiment(older).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND


def test_a_pipeline_run_starts_with_its_source_config_versions_and_datasets_then_takes_results(tracking_uri):
    target = TrackingTarget(tracking_uri)
    start = PipelineRunStart(experiment="pipeline-runs", run_name="voc-unet-1", source="segpipe run --output out",
                             code_dir=REPOSITORY_ROOT, params={"training.epochs": 2, "model.architecture": "unet"},
                             tags={"segpipe.dataset_fingerprint": FINGERPRINT.digest},
                             datasets=dataset_inputs(FINGERPRINT, "train", "val"))
    run_id = start_pipeline_run(target, start)
    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "RUNNING" and run.info.run_name == "voc-unet-1"
    assert run.data.tags["mlflow.source.name"] == "segpipe run --output out"
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    assert run.data.params["training.epochs"] == "2"
    assert {"version.tensorflow", "version.tfx", "version.apache-beam", "version.tensorflow-transform",
            "version.tensorflow-model-analysis", "version.mlflow"} <= set(run.data.params)
    inputs = {item.dataset.name: item for item in run.inputs.dataset_inputs}
    assert sorted(inputs) == ["pascal_voc/train", "pascal_voc/val"]
    assert {tag.key: tag.value for tag in inputs["pascal_voc/train"].tags}["mlflow.data.context"] == "training"
    assert {tag.key: tag.value for tag in inputs["pascal_voc/val"].tags}["mlflow.data.context"] == "evaluation"
    assert inputs["pascal_voc/val"].dataset.digest == "b" * 16
    assert json.loads(inputs["pascal_voc/train"].dataset.profile)["num_rows"] == 6
    assert json.loads(inputs["pascal_voc/train"].dataset.source)["uri"].endswith("train.txt")

    # The tracker logs into the running run and leaves it running; curves come from the history only
    # when the Trainer did not log them live.
    record = RunRecord(run_name="unused", metrics={"eval/miou": 0.5}, history={"loss": [2.0, 1.5]},
                       tags={"segpipe.blessed": "true"})
    assert log_run(tracking_uri, "pipeline-runs", record, run_id=run_id) == (run_id, None)
    assert client.get_run(run_id).info.status == "RUNNING"
    assert [point.value for point in client.get_metric_history(run_id, "train/loss")] == [2.0, 1.5]
    end_pipeline_run(target, run_id, succeeded=True, tags={"tfx.pipeline_run_id": "2026-12-03T10:00:00"})
    ended = client.get_run(run_id)
    assert ended.info.status == "FINISHED" and ended.data.metrics["eval/miou"] == 0.5
    assert ended.data.tags["tfx.pipeline_run_id"] == "2026-12-03T10:00:00"


def test_log_run_without_a_run_creates_and_ends_one(tracking_uri, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "per_class.json").write_text("{}")
    record = RunRecord(run_name="remote-1", params={"training.epochs": 2}, metrics={"eval/miou": 0.25},
                       history={"loss": [2.0, 1.5, 1.2]}, artifacts={"evaluation_report": str(report)})
    run_id, version = log_run(tracking_uri, "remote-runs", record)
    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    assert version is None and run.info.status == "FINISHED" and run.info.run_name == "remote-1"
    assert run.data.params["training.epochs"] == "2" and "version.mlflow" in run.data.params
    assert [point.step for point in client.get_metric_history(run_id, "train/loss")] == [0, 1, 2]
    assert [item.path for item in client.list_artifacts(run_id, "evaluation_report")] == [
        "evaluation_report/per_class.json"]
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND


def test_an_absent_server_is_retried_with_backoff_then_one_error_names_it():
    uri = f"http://127.0.0.1:{free_loopback_port()}"
    started = time.monotonic()
    with mlflow_client_settings(max_retries=0), pytest.raises(TrackingError) as raised:
        log_run(uri, "gone", RunRecord(run_name="x"), run_id="0123456789abcdef", attempts=3, first_delay_s=0.2)
    elapsed = time.monotonic() - started
    assert str(raised.value).startswith(f"MLflow run lookup failed at {uri} after 3 attempts: ")
    assert "Connection refused" in str(raised.value)
    assert 0.6 <= elapsed < 20  # two waits: 0.2 s, then 0.4 s


def _fit_with_live_logger(tracking_uri: str, run_id: str, epochs: int):
    import tf_keras as keras

    from components.trainer.live_metrics import MlflowEpochLogger

    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    live = MlflowEpochLogger(tracking_uri, run_id)
    features, targets = np.ones((8, 2), np.float32), np.zeros((8, 1), np.float32)
    history = model.fit(features, targets, validation_data=(features, targets), epochs=epochs, batch_size=4,
                        callbacks=[live], verbose=0)
    return history, live


def test_the_keras_callback_logs_each_epoch_as_it_ends(tracking_uri):
    client = MlflowClient(tracking_uri)
    run_id = client.create_run(ensure_experiment(client, "live", None)).info.run_id
    before = int(time.time() * 1000)
    history, live = _fit_with_live_logger(tracking_uri, run_id, epochs=3)
    assert not live.failed
    points = client.get_metric_history(run_id, "train/val_loss")
    assert [point.step for point in points] == [0, 1, 2]
    assert [point.value for point in points] == pytest.approx(history.history["val_loss"])
    assert all(point.timestamp >= before for point in points)
    assert points[0].timestamp <= points[1].timestamp <= points[2].timestamp
    assert "train/loss" in client.get_run(run_id).data.metrics


def test_training_goes_on_when_the_server_is_away_with_one_warning(caplog):
    uri = f"http://127.0.0.1:{free_loopback_port()}"
    with mlflow_client_settings(max_retries=0), caplog.at_level(logging.WARNING, "components.trainer.live_metrics"):
        history, live = _fit_with_live_logger(uri, "0123456789abcdef", epochs=3)
    assert live.failed and len(history.history["loss"]) == 3
    warnings = [record.getMessage() for record in caplog.records if record.name == "components.trainer.live_metrics"]
    assert len(warnings) == 1 and uri in warnings[0] and "training goes on" in warnings[0]
    assert "Connection refused" in warnings[0]


def test_a_served_model_registers_as_champion_on_the_default_sqlite_store_and_predicts(tmp_path, monkeypatch):
    """On the embedded store (SQLite, file artifacts) as on a server: a new version, the alias moved to it,
    and `models:/<name>@champion` loading through pyfunc with a mask per image at the image's size. The
    SavedModel is a small real one with the serving contract (`serving_default`: `images` -> `class_ids`)."""
    import io

    import mlflow
    import pandas as pd
    import tensorflow as tf
    from PIL import Image

    from components.tracking.mlflow_logging import ServedModel, register_served_model
    from components.tracking.targets import local_artifact_location, local_tracking_uri

    class Threshold(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, images):
            pixels = tf.io.decode_image(images[0], channels=3, expand_animations=False)
            return {"class_ids": tf.cast(pixels[..., 0] > 127, tf.int64)[tf.newaxis]}

    module = Threshold()
    tf.saved_model.save(module, str(tmp_path / "pushed"), signatures={"serving_default": module.serve})
    picture = np.zeros((6, 10, 3), np.uint8)
    picture[:, 5:] = 200
    encoded = io.BytesIO()
    Image.fromarray(picture).save(encoded, format="PNG")

    uri = local_tracking_uri(tmp_path / "out")
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("local", artifact_location=local_artifact_location(tmp_path / "out"))
    versions = []
    for _ in range(2):
        run_id = client.create_run(experiment_id).info.run_id
        served = ServedModel(str(tmp_path / "pushed"), encoded.getvalue(), registered_name="local-model")
        versions.append(register_served_model(client, run_id, served))
    assert versions == ["1", "2"]
    assert str(client.get_model_version_by_alias("local-model", "champion").version) == "2"  # int on SQLite
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    model = mlflow.pyfunc.load_model("models:/local-model@champion")
    (mask,) = model.predict(pd.DataFrame({"image": [encoded.getvalue()]}))
    np.testing.assert_array_equal(mask, (picture[..., 0] > 127).astype(np.uint8))
