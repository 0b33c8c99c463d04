"""End to end: the real pipeline on LocalDagRunner over a tiny generated VOC dataset.

Asserts what each stage produced: TFRecords with the expected counts per split, a transform graph,
a SavedModel that loads and predicts masks of the right shape, a finite mIoU, a pushed model, and an
MLflow run (on a real server on 127.0.0.1) holding the metrics and the registered model.
"""

from __future__ import annotations

import glob
import json
import math
import os
from pathlib import Path

import pytest

from tests.support.mlflow_server import mlflow_server
from tests.support.sockets import is_loopback, watch_listening

pytestmark = pytest.mark.e2e

NUM_IMAGES = 8


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    from components.core import sample_data
    from pipeline.config import load_config, DEFAULT_CONFIG
    from pipeline.local_runner import run_local

    workdir = tmp_path_factory.mktemp("e2e")
    data_summary = sample_data.write_voc_dataset(workdir / "data", num_images=NUM_IMAGES, image_size=(40, 48), seed=3)
    with mlflow_server(workdir / "mlflow") as tracking_uri:
        config = load_config(DEFAULT_CONFIG, [
            "model.image_size=[32, 32]", "model.unet.base_filters=4", "model.unet.depth=2",
            "training.epochs=1", "training.steps_per_epoch=2", "training.batch_size=2", "training.eval_steps=1",
            "evaluation.miou_threshold=0.0", "evaluation.miou_max_drop=1.0",
            "runtime.beam_mode=in_memory", "runtime.pipeline_name=e2e-voc",
            f"runtime.mlflow_tracking_uri={tracking_uri}"])
        with watch_listening() as listening:  # this process and its children, the MLflow server included
            summary = run_local(config, workdir / "out", data_dir=str(workdir / "data"))
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
        run = client.get_run(summary.mlflow_run_id)
        versions = client.search_model_versions(f"run_id = '{run.info.run_id}'")
        artifacts = [item.path for item in client.list_artifacts(run.info.run_id, "serving_model")]
        report_artifacts = [item.path for item in client.list_artifacts(run.info.run_id, "evaluation_report")]
        # A second run, against the first run's blessed model, with a bar no model can pass. Caching
        # reuses ingestion, Transform and training, so only evaluation onwards runs again.
        second = run_local(config.from_dict({**config.to_dict(),
                                             "evaluation": {"miou_threshold": 1.0, "miou_max_drop": 0.01},
                                             "runtime": {**config.to_dict()["runtime"], "enable_cache": True}}),
                           workdir / "out", data_dir=str(workdir / "data"))
        all_versions = client.search_model_versions("name = 'e2e-voc'")
    return {"workdir": workdir, "summary": summary, "data": data_summary, "run": run, "versions": versions,
            "artifacts": artifacts, "report_artifacts": report_artifacts, "second": second,
            "all_versions": all_versions, "listening": listening}


def _artifact_dirs(workdir: Path, component: str, output: str) -> list[str]:
    """The artifact folders of one component output, oldest first (folders are named by artifact id)."""
    return sorted(glob.glob(str(workdir / "out" / "tfx" / component / output / "*")),
                  key=lambda path: int(os.path.basename(path)))


def _count_records(pattern: str) -> int:
    import tensorflow as tf

    files = tf.io.gfile.glob(pattern)
    assert files, f"no TFRecord files match {pattern}"
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def test_example_gen_wrote_every_listed_image(pipeline_run):
    examples_dir = _artifact_dirs(pipeline_run["workdir"], "SegmentationExampleGen", "examples")[-1]
    counts = pipeline_run["data"]["counts"]
    assert _count_records(os.path.join(examples_dir, "Split-train", "*")) == counts["train"]
    assert _count_records(os.path.join(examples_dir, "Split-val", "*")) == counts["val"]


def test_transform_graph_was_written(pipeline_run):
    graph_dir = _artifact_dirs(pipeline_run["workdir"], "Transform", "transform_graph")[-1]
    assert os.path.isdir(os.path.join(graph_dir, "transform_fn"))
    assert os.path.isfile(os.path.join(graph_dir, "transformed_metadata", "schema.pbtxt"))


def test_pushed_model_loads_and_predicts_masks(pipeline_run):
    import tensorflow as tf

    summary = pipeline_run["summary"]
    assert summary.blessed
    assert summary.pushed_model and os.path.isdir(summary.pushed_model)
    examples_dir = _artifact_dirs(pipeline_run["workdir"], "SegmentationExampleGen", "examples")[-1]
    files = tf.io.gfile.glob(os.path.join(examples_dir, "Split-val", "*"))
    serialized = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP").batch(2)))
    model = tf.saved_model.load(summary.pushed_model)
    for name in ("serve_examples", "transform_features", "slice_features"):
        # keyword callers bind the structured signature directly (see export_serving_model)
        assert model.signatures[name].structured_input_signature[1].keys() == {"examples"}, name
    assert model.signatures["serving_default"].structured_input_signature[1].keys() == {"images"}
    outputs = model.signatures["serve_examples"](examples=serialized)
    assert outputs["class_ids"].shape == (2, 32, 32)
    assert outputs["probabilities"].shape == (2, 32, 32, 21)
    assert bool(tf.reduce_all(tf.abs(tf.reduce_sum(outputs["probabilities"], -1) - 1.0) < 1e-4))


def test_the_push_holds_every_format_with_a_manifest_and_int8_within_tolerance(pipeline_run):
    from components import artifacts
    from components.core import push_manifest

    folder = Path(pipeline_run["summary"].pushed_model)
    assert push_manifest.verify_folder(folder) == []
    manifest = push_manifest.read_manifest(folder)
    assert set(manifest["formats"]) == {"saved_model", "tflite_float32", "tflite_dynamic_range", "tflite_int8"}
    for variant, name in artifacts.TFLITE_FILES.items():
        assert (folder / push_manifest.TFLITE_DIR / name).is_file(), variant
    int8 = manifest["formats"]["tflite_int8"]
    assert int8["miou"] is not None and int8["miou_drop"] <= 0.01  # export.max_miou_drop's default
    assert manifest["formats"]["saved_model"]["metrics"]["miou"] == pytest.approx(pipeline_run["summary"].metrics["miou"])
    assert manifest["source"]["pipeline_name"] == "e2e-voc"
    assert manifest["source"]["tfx"]["model_uri"].startswith(str(pipeline_run["workdir"] / "out" / "tfx" / "Trainer"))


def test_evaluation_gives_a_finite_miou_overall_and_per_split(pipeline_run):
    metrics = pipeline_run["summary"].metrics
    assert 0.0 <= metrics["miou"] <= 1.0 and math.isfinite(metrics["miou"])
    assert metrics["slice/split:val/miou"] == pytest.approx(metrics["miou"])
    assert metrics["slice/dataset:pascal_voc/miou"] == pytest.approx(metrics["miou"])
    assert metrics["slice/size_bucket:le256/miou"] == pytest.approx(metrics["miou"])
    assert metrics["example_count"] == pipeline_run["data"]["counts"]["val"]
    assert 0.0 <= metrics["pixel_accuracy"] <= 1.0 and 0.0 <= metrics["mean_dice"] <= 1.0
    assert metrics["hd_pairs"] + metrics["hd_one_empty"] >= 1


def test_evaluation_report_has_tables_confusion_matrix_and_overlays(pipeline_run):
    import json

    report_dir = _artifact_dirs(pipeline_run["workdir"], "EvaluationReport", "report")[0]
    table = json.loads(Path(report_dir, "per_class.json").read_text())
    assert [row["class"] for row in table["classes"]][:2] == ["background", "aeroplane"]
    assert table["overall"]["miou"] == pytest.approx(pipeline_run["summary"].metrics["miou"])
    assert Path(report_dir, "confusion_matrix.png").is_file()
    overlays = sorted(p.relative_to(report_dir).as_posix() for p in Path(report_dir, "overlays").rglob("*.png"))
    assert any(path.startswith("overlays/all/") for path in overlays)
    assert any(path.startswith("overlays/split-val/") for path in overlays)


def test_a_model_below_the_bar_is_compared_with_the_last_blessed_one_and_not_pushed(pipeline_run):
    import tensorflow_model_analysis as tfma

    second = pipeline_run["second"]
    assert not second.blessed and second.pushed_model == ""
    # Only the evaluation settings changed: the cached model is evaluated again, so it scores the same.
    assert second.metrics["miou"] == pytest.approx(pipeline_run["summary"].metrics["miou"])
    assert second.metrics["miou_diff"] == pytest.approx(0.0, abs=1e-9)
    assert second.mlflow_run_id != pipeline_run["summary"].mlflow_run_id
    assert [version.version for version in pipeline_run["all_versions"]] == ["1"]
    evaluation = _artifact_dirs(pipeline_run["workdir"], "Evaluator", "evaluation")[-1]
    validation = tfma.load_validation_result(evaluation)
    assert not validation.validation_ok
    overall = [failures for failures in validation.metric_validations_per_slice if not failures.slice_key.ListFields()]
    (failure,) = overall[0].failures
    assert failure.metric_key.name == "miou" and not failure.metric_key.is_diff
    baseline_metrics = tfma.load_eval_result(evaluation, model_name="baseline").get_metrics_for_slice()
    assert "miou" in baseline_metrics


def test_mlflow_run_holds_params_metrics_and_registered_model(pipeline_run):
    run = pipeline_run["run"]
    assert run.info.status == "FINISHED"
    assert run.data.params["training.epochs"] == "1"
    assert run.data.params["data.format"] == "voc"
    assert math.isfinite(run.data.metrics["miou"])
    assert "train/loss" in run.data.metrics
    counts = pipeline_run["data"]["counts"]
    assert run.data.metrics["data/train/written"] == counts["train"]
    assert run.data.metrics["data/val/listed"] == counts["val"]
    assert run.data.metrics["data/val/quarantined"] == 0
    assert run.data.metrics["data/anomalies"] == 0
    assert run.data.tags["segpipe.pushed"] == "true"
    assert [version.name for version in pipeline_run["versions"]] == ["e2e-voc"]
    assert "serving_model/saved_model.pb" in pipeline_run["artifacts"]
    assert {"evaluation_report/per_class.json", "evaluation_report/per_class.md", "evaluation_report/confusion_matrix.png"} <= set(pipeline_run["report_artifacts"])


def test_nothing_listened_beyond_loopback_during_the_run(pipeline_run):
    """Beam's DirectRunner servers (ExampleGen: worker pool, control, data, state, logging) and the
    MLflow server were seen, all on loopback."""
    listening = pipeline_run["listening"]
    assert len(listening) >= 5
    assert not sorted(entry for entry in listening if not is_loopback(entry[1]))


# Kept last in this module: it adds a run to the fixture's output folder, which the tests above read.
def test_a_run_killed_during_training_reuses_finished_steps_and_resumes_training(pipeline_run):
    """`segpipe run --until Trainer` over the fixture's outputs with caching on and more epochs: every step
    before the Trainer is a cache hit; SIGTERM once the Trainer has checkpointed its second epoch (SIGKILL if
    it is still alive 30 s later); the same command again reuses the finished steps (ML Metadata and log) and
    resumes training from the checkpoint instead of epoch 1; no execution is left RUNNING, no process behind.
    (`--until Trainer` spares the steps after training, which the fixture's runs test, ~40 s.)"""
    import re
    import signal
    import subprocess
    import sys
    import time

    import psutil
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx import v1 as tfx

    workdir = pipeline_run["workdir"]
    epochs = 6
    command = [sys.executable, "-m", "pipeline.cli", "run", "--data-dir", str(workdir / "data"),
               "--output", str(workdir / "out")] + [
        f"--set={override}" for override in (
            "model.image_size=[32, 32]", "model.unet.base_filters=4", "model.unet.depth=2",
            f"training.epochs={epochs}", "training.steps_per_epoch=2", "training.batch_size=2",
            "training.eval_steps=1", "evaluation.miou_threshold=0.0", "evaluation.miou_max_drop=1.0",
            "runtime.beam_mode=in_memory", "runtime.pipeline_name=e2e-voc", "runtime.enable_cache=true")] + [
        "--until", "Trainer"]
    repository = Path(__file__).resolve().parents[2]
    environment = {"PYTHONPATH": str(repository), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                   "HOME": str(workdir)}
    model_runs = workdir / "out" / "tfx" / "Trainer" / "model_run"

    def saved_epochs() -> int:
        """The newest resumable checkpoint's number (one per epoch)."""
        return max((int(match.group(1)) for path in model_runs.glob("resume-*/**/ckpt-*.index")
                    if (match := re.fullmatch(r"ckpt-(\d+)\.index", path.name))), default=0)

    started = time.monotonic()
    first = subprocess.Popen(command, cwd=repository, env=environment, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    children = set()
    try:
        while saved_epochs() < 2 and first.poll() is None and time.monotonic() - started < 240:
            children.update(psutil.Process(first.pid).children(recursive=True))
            time.sleep(0.05)
        assert first.poll() is None, f"the run ended before the Trainer checkpointed twice: {first.communicate()[1]}"
        first.send_signal(signal.SIGTERM)
        try:
            first_log = first.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            first.kill()
            first_log = first.communicate()[1]
    finally:
        if first.poll() is None:
            first.kill()
    if first.returncode != -signal.SIGKILL:  # it stopped on SIGTERM by itself
        assert first.returncode == 128 + signal.SIGTERM, first_log
        assert "segpipe: interrupted by SIGTERM" in first_log and "Trainer: interrupted;" in first_log
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]

    second = subprocess.run(command, cwd=repository, env=environment, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    upstream = ("SegmentationExampleGen", "ImportSchemaGen", "Transform")  # what the Trainer depends on
    for component in upstream:
        assert re.search(rf"I {component}: cached: outputs reused from an earlier run", second.stderr), component
    resumed = re.search(rf"Trainer: resumed at epoch (\d+) of {epochs} \(step (\d+)\)", second.stderr)
    assert resumed and int(resumed.group(1)) >= 3 and int(resumed.group(2)) >= 4, second.stderr

    store = metadata_store.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(
        str(workdir / "out" / "metadata.sqlite")))

    def newest_states(component: str) -> list[int]:
        node = store.get_context_by_type_and_name("node", f"e2e-voc.{component}")
        return [execution.last_known_state for execution in
                sorted(store.get_executions_by_context(node.id), key=lambda execution: execution.id)]

    for component in upstream:
        assert newest_states(component)[-2:] == [metadata_store_pb2.Execution.CACHED] * 2, component
    trainer_states = newest_states("Trainer")
    assert trainer_states[-2:] == [metadata_store_pb2.Execution.CANCELED, metadata_store_pb2.Execution.COMPLETE]
    assert not [execution for execution in store.get_executions()
                if execution.last_known_state == metadata_store_pb2.Execution.RUNNING]
    newest_run = max((path for path in model_runs.iterdir() if path.name.isdigit()), key=lambda path: int(path.name))
    history = json.loads((newest_run / "history.json").read_text())
    assert len(history["loss"]) == epochs - int(resumed.group(1)) + 1 and history["steps"][-1] == 2 * epochs
    print(f"killed and resumed in {time.monotonic() - started:.0f} s")
