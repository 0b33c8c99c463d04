"""End to end: the real pipeline on LocalDagRunner over a tiny generated VOC dataset.

Asserts what each stage produced: TFRecords with the expected counts per split, a transform graph,
a SavedModel that loads and predicts masks of the right shape, a finite mIoU, a pushed model, and an
MLflow run (on a real server on 127.0.0.1) that spans the pipeline: parameters, dataset inputs,
training curves logged while the Trainer ran, evaluation and TFLite figures, artifacts, and a registered
champion that `mlflow.pyfunc` loads and predicts with; the two runs compared through the API and in the
MLflow UI (headless Chromium); `segpipe track` logging the run again, and reporting a server lost while
logging (the tests that add runs to the experiment come last).
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import time
from pathlib import Path

import pytest

from tests.support.mlflow_server import mlflow_server
from tests.support.sockets import is_loopback, watch_listening

pytestmark = pytest.mark.e2e

NUM_IMAGES = 8


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """Two pipeline runs against one MLflow server (the second below the bar, its steps up to the
    Evaluator cached); the server stays up while the module's tests run."""
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
            summary = run_local(config, workdir / "out", data_dir=str(workdir / "data"), source="segpipe run (e2e)")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
        run = client.get_run(summary.mlflow_run_id)
        versions = client.search_model_versions(f"run_id = '{run.info.run_id}'")
        report_artifacts = [item.path for item in client.list_artifacts(run.info.run_id, "evaluation_report")]
        # A second run, against the first run's blessed model, with a bar no model can pass. Caching
        # reuses ingestion, Transform and training, so only evaluation onwards runs again.
        second = run_local(config.from_dict({**config.to_dict(),
                                             "evaluation": {"miou_threshold": 1.0, "miou_max_drop": 0.01},
                                             "runtime": {**config.to_dict()["runtime"], "enable_cache": True}}),
                           workdir / "out", data_dir=str(workdir / "data"))
        all_versions = client.search_model_versions("name = 'e2e-voc'")
        yield {"workdir": workdir, "summary": summary, "data": data_summary, "run": run, "versions": versions,
               "report_artifacts": report_artifacts, "second": second, "all_versions": all_versions,
               "listening": listening, "tracking_uri": tracking_uri, "client": client}


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
    assert manifest["formats"]["saved_model"]["metrics"]["miou"] == pytest.approx(
        pipeline_run["summary"].metrics["eval/miou"])
    assert manifest["source"]["pipeline_name"] == "e2e-voc"
    assert manifest["source"]["mlflow"]["run_id"] == pipeline_run["summary"].mlflow_run_id
    assert manifest["source"]["tfx"]["model_uri"].startswith(str(pipeline_run["workdir"] / "out" / "tfx" / "Trainer"))


def test_evaluation_gives_a_finite_miou_overall_and_per_split(pipeline_run):
    metrics = pipeline_run["summary"].metrics
    assert 0.0 <= metrics["eval/miou"] <= 1.0 and math.isfinite(metrics["eval/miou"])
    assert metrics["eval/split:val/miou"] == pytest.approx(metrics["eval/miou"])
    assert metrics["eval/dataset:pascal_voc/miou"] == pytest.approx(metrics["eval/miou"])
    assert metrics["eval/size_bucket:le256/miou"] == pytest.approx(metrics["eval/miou"])
    assert metrics["eval/example_count"] == pipeline_run["data"]["counts"]["val"]
    assert 0.0 <= metrics["eval/pixel_accuracy"] <= 1.0 and 0.0 <= metrics["eval/mean_dice"] <= 1.0
    assert metrics["eval/hd_pairs"] + metrics["eval/hd_one_empty"] >= 1


def test_evaluation_report_has_tables_confusion_matrix_and_overlays(pipeline_run):
    import json

    report_dir = _artifact_dirs(pipeline_run["workdir"], "EvaluationReport", "report")[0]
    table = json.loads(Path(report_dir, "per_class.json").read_text())
    assert [row["class"] for row in table["classes"]][:2] == ["background", "aeroplane"]
    assert table["overall"]["miou"] == pytest.approx(pipeline_run["summary"].metrics["eval/miou"])
    assert Path(report_dir, "confusion_matrix.png").is_file()
    overlays = sorted(p.relative_to(report_dir).as_posix() for p in Path(report_dir, "overlays").rglob("*.png"))
    assert any(path.startswith("overlays/all/") for path in overlays)
    assert any(path.startswith("overlays/split-val/") for path in overlays)


def test_a_model_below_the_bar_is_compared_with_the_last_blessed_one_and_not_pushed(pipeline_run):
    import tensorflow_model_analysis as tfma

    second = pipeline_run["second"]
    assert not second.blessed and second.pushed_model == ""
    # Only the evaluation settings changed: the cached model is evaluated again, so it scores the same.
    assert second.metrics["eval/miou"] == pytest.approx(pipeline_run["summary"].metrics["eval/miou"])
    assert second.metrics["eval/miou_diff"] == pytest.approx(0.0, abs=1e-9)
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


def _trainer_execution(workdir: Path):
    """The first Trainer execution in the run folder's ML Metadata (the first pipeline run's training)."""
    from ml_metadata.metadata_store import metadata_store
    from tfx import v1 as tfx

    store = metadata_store.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(
        str(workdir / "out" / "metadata.sqlite")))
    node = store.get_context_by_type_and_name("node", "e2e-voc.Trainer")
    return min(store.get_executions_by_context(node.id), key=lambda execution: execution.id)


def test_mlflow_run_spans_the_pipeline_with_source_params_datasets_and_results(pipeline_run):
    run = pipeline_run["run"]
    assert run.info.status == "FINISHED"
    assert run.data.params["training.epochs"] == "1" and run.data.params["data.format"] == "voc"
    assert run.data.params["version.tfx"].startswith("1.16") and "version.tensorflow" in run.data.params
    tags = run.data.tags
    assert tags["mlflow.source.name"] == "segpipe run (e2e)"
    assert tags["tfx.pipeline_name"] == "e2e-voc" and tags["tfx.pipeline_run_id"]
    assert tags["segpipe.architecture"] == "unet" and tags["segpipe.backbone"] == "none"
    assert tags["segpipe.dataset"] == "pascal_voc" and len(tags["segpipe.dataset_fingerprint"]) == 16
    assert int(tags["tfx.artifact.model"]) > 0 and int(tags["tfx.artifact.examples"]) > 0
    trainer = _trainer_execution(pipeline_run["workdir"])
    # The run started before the Trainer and ended after it: its duration is the pipeline's.
    assert run.info.start_time < trainer.create_time_since_epoch
    assert run.info.end_time > trainer.last_update_time_since_epoch
    counts = pipeline_run["data"]["counts"]
    inputs = {item.dataset.name: item for item in run.inputs.dataset_inputs}
    assert sorted(inputs) == ["pascal_voc/train", "pascal_voc/val"]
    assert {tag.key: tag.value for tag in inputs["pascal_voc/train"].tags}["mlflow.data.context"] == "training"
    assert {tag.key: tag.value for tag in inputs["pascal_voc/val"].tags}["mlflow.data.context"] == "evaluation"
    assert json.loads(inputs["pascal_voc/val"].dataset.profile)["num_rows"] == counts["val"]
    metrics = run.data.metrics
    assert math.isfinite(metrics["eval/miou"]) and metrics["eval/split:val/miou"] == pytest.approx(metrics["eval/miou"])
    assert "eval/iou/background" in metrics
    assert metrics["data/train/written"] == counts["train"] and metrics["data/val/listed"] == counts["val"]
    assert metrics["data/val/quarantined"] == 0 and metrics["data/anomalies"] == 0
    assert 0.0 <= metrics["tflite/float32/miou"] <= 1.0 and metrics["tflite/int8/size_bytes"] > 0
    assert tags["segpipe.pushed"] == "true"
    assert {"evaluation_report/per_class.json", "evaluation_report/per_class.md",
            "evaluation_report/confusion_matrix.png"} <= set(pipeline_run["report_artifacts"])
    client = pipeline_run["client"]
    assert "tflite/tflite_models.json" in [item.path for item in client.list_artifacts(run.info.run_id, "tflite")]
    assert [item.path for item in client.list_artifacts(run.info.run_id, "push")] == ["push/manifest.json"]
    assert client.list_artifacts(run.info.run_id, "tensorboard")


def test_training_curves_were_logged_while_the_trainer_ran(pipeline_run):
    client, run_id = pipeline_run["client"], pipeline_run["run"].info.run_id
    trainer_end = _trainer_execution(pipeline_run["workdir"]).last_update_time_since_epoch
    for name in ("train/loss", "train/miou", "train/val_loss", "train/val_miou", "train/learning_rate"):
        points = client.get_metric_history(run_id, name)
        assert [point.step for point in points] == [0], name  # one epoch (several: tests/unit/tracking)
        assert all(point.timestamp < trainer_end for point in points), name


def test_the_pushed_model_is_the_champion_and_predicts_masks_through_pyfunc(pipeline_run, monkeypatch):
    import mlflow
    import numpy as np
    import pandas as pd
    import tensorflow as tf
    from PIL import Image

    client = pipeline_run["client"]
    (version,) = pipeline_run["versions"]
    assert version.name == "e2e-voc"
    assert client.get_model_version_by_alias("e2e-voc", "champion").version == version.version
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pipeline_run["tracking_uri"])
    model = mlflow.pyfunc.load_model("models:/e2e-voc@champion")
    assert model.metadata.get_input_schema().input_names() == ["image"]
    jpeg = sorted((pipeline_run["workdir"] / "data").rglob("*.jpg"))[0].read_bytes()
    png_path = pipeline_run["workdir"] / "other-size.png"
    Image.fromarray(np.full((20, 28, 3), 90, np.uint8)).save(png_path)
    masks = model.predict(pd.DataFrame({"image": [jpeg, png_path.read_bytes()]}))
    assert [mask.shape for mask in masks] == [(40, 48), (20, 28)]
    served = tf.saved_model.load(pipeline_run["summary"].pushed_model).signatures["serving_default"]
    expected = served(images=tf.constant([jpeg]))["class_ids"].numpy()[0]
    np.testing.assert_array_equal(masks[0], expected)
    assert masks[1].max() < 21


def test_two_runs_with_different_configs_are_compared_by_their_metrics(pipeline_run):
    client, first, second = pipeline_run["client"], pipeline_run["run"], pipeline_run["second"]
    runs = client.search_runs([first.info.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time ASC"])
    by_id = {run.info.run_id: run for run in runs}
    assert {first.info.run_id, second.mlflow_run_id} <= set(by_id)
    older, newer = by_id[first.info.run_id], by_id[second.mlflow_run_id]
    assert (older.data.params["evaluation.miou_threshold"], newer.data.params["evaluation.miou_threshold"]) == (
        "0.0", "1.0")
    assert newer.data.metrics["eval/miou"] == pytest.approx(older.data.metrics["eval/miou"])
    assert (older.data.tags["segpipe.blessed"], newer.data.tags["segpipe.blessed"]) == ("true", "false")
    # the second run's Trainer was cached: its curves come from the first training's history
    assert [point.step for point in client.get_metric_history(newer.info.run_id, "train/loss")] == [0]


def test_nothing_listened_beyond_loopback_during_the_run(pipeline_run):
    """Beam's DirectRunner servers (ExampleGen: worker pool, control, data, state, logging) and the
    MLflow server were seen, all on loopback."""
    listening = pipeline_run["listening"]
    assert len(listening) >= 5
    assert not sorted(entry for entry in listening if not is_loopback(entry[1]))


MODEL_TRAINING_VIEW = "workflowType=machine_learning"
"""MLflow 3.17's UI picks its view from a global toggle (remembered by the browser, GenAI by default) or
this URL parameter; the experiment's `mlflow.experimentKind` tag alone does not switch it."""


def _close_assistant(page) -> None:
    """Closes MLflow's assistant side panel, when it is open, so that the screenshots show the runs."""
    close = '[data-component-id="mlflow.assistant.chat_panel.close"]'
    if page.evaluate(f"!!document.querySelector({json.dumps(close)})"):
        page.click(close)
        page.wait_for(f"!document.querySelector({json.dumps(close)})", what="the assistant panel closed")


def _ui_seconds(text: str) -> float:
    """A duration as MLflow's UI writes it ("850ms", "58.2s", "1.6min", "1.1h") in seconds."""
    number, unit = re.fullmatch(r"([0-9.]+)\s*(ms|s|min|h)", text).groups()
    return float(number) * {"ms": 0.001, "s": 1, "min": 60, "h": 3600}[unit]


def test_the_mlflow_ui_shows_both_runs_and_compares_them(pipeline_run, tmp_path_factory):
    """Headless Chromium on the e2e's MLflow server: the experiment's runs in the model-training view with
    their names, datasets, durations and the mIoU column (added as a user does, by sorting on it), then
    the comparison of the two runs. Screenshots are kept in the test's temporary folder."""
    import urllib.parse

    from tests.support.headless_browser import chromium, chromium_binary

    if chromium_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    client, uri = pipeline_run["client"], pipeline_run["tracking_uri"]
    first, second = pipeline_run["run"], client.get_run(pipeline_run["second"].mlflow_run_id)
    experiment_id = first.info.experiment_id
    trainer = _trainer_execution(pipeline_run["workdir"])
    trainer_s = (trainer.last_update_time_since_epoch - trainer.create_time_since_epoch) / 1000
    folder = tmp_path_factory.mktemp("ui")
    with chromium(folder / "profile", width=1800, height=1000) as page:
        page.goto(f"{uri}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING_VIEW}")
        names = [first.info.run_name, second.info.run_name]
        page.wait_for(" && ".join(f"document.body.innerText.includes({json.dumps(name)})" for name in names),
                      what="both runs")
        page.click('[data-testid="sort-select-dropdown"]')
        page.wait_for("!!document.querySelector('[data-testid=\"sort-select-eval/miou\"]')", what="the sort menu")
        page.click('[data-testid="sort-select-eval/miou"]')
        page.wait_for("document.querySelectorAll('[col-id=\"metrics.`eval/miou`\"]').length >= 3",
                      what="the eval/miou column")
        page.call("Input.dispatchKeyEvent", type="keyDown", key="Escape")
        _close_assistant(page)
        # ag-grid renders a row in parts (pinned and scrolling columns): merge them by row index
        read_rows = ("(() => { const rows = {}; document.querySelectorAll('.ag-row').forEach(row => { "
                     "const merged = rows[row.getAttribute('row-index')] ??= {}; "
                     "row.querySelectorAll('[col-id]').forEach(cell => { "
                     "merged[cell.getAttribute('col-id')] = cell.innerText.trim(); }); }); "
                     "return Object.values(rows); })()")
        # the table reloads sorted by mIoU: wait until both runs show a value in the new column
        page.wait_for(f"{read_rows}.filter(row => {json.dumps(names)}.some(name => (row['attributes.`Run Name`'] || '')"
                      ".endsWith(name)) && /[0-9]/.test(row['metrics.`eval/miou`'] || '')).length === 2",
                      what="the mIoU of both runs")
        cells = page.evaluate(read_rows)
        page.screenshot(folder / "experiment-runs.png")
        text = page.text()
        # the model-training view: its side navigation (Runs, Models), not the GenAI one (Sessions, Judges)
        assert "Model training" in text and "Models" in text and "Sessions" not in text and "Judges" not in text
        rows = {row["attributes.`Run Name`"].split()[-1]: row for row in cells if row.get("attributes.`Run Name`")}
        assert set(names) <= set(rows)
        for run in (first, second):
            row = rows[run.info.run_name]
            assert float(row["metrics.`eval/miou`"]) == pytest.approx(run.data.metrics["eval/miou"], abs=1e-3)
            assert "pascal_voc/train" in row["attributes.`Dataset`"] and "Training" in row["attributes.`Dataset`"]
            assert row["attributes.`Source`"].startswith("segpipe run")
        assert "e2e-voc" in rows[first.info.run_name]["attributes.`Models`"]  # its registered model version
        first_duration = rows[first.info.run_name]["duration"]
        assert _ui_seconds(first_duration) > trainer_s, (first_duration, trainer_s)

        runs = urllib.parse.quote(json.dumps([first.info.run_id, second.info.run_id]))
        page.goto(f"{uri}/#/compare-runs?runs={runs}&experiments={urllib.parse.quote(json.dumps([experiment_id]))}"
                  f"&{MODEL_TRAINING_VIEW}")
        page.wait_for("document.body.innerText.includes('Comparing 2 Runs')", what="the comparison")
        page.wait_for(" && ".join(f"document.body.innerText.includes({json.dumps(name)})" for name in names),
                      what="both run names in the comparison")
        _close_assistant(page)
        page.screenshot(folder / "compare-runs.png")
        text = page.text()
        # the parameter that differs, with each run's value, and the runs' metrics side by side
        assert re.search(r"evaluation\.miou_threshold\s+0\.0\s+1\.0", text), text[:3000]
        assert "Metrics" in text and "data/train/written" in text and "eval/" in text
    for screenshot in ("experiment-runs.png", "compare-runs.png"):
        assert (folder / screenshot).stat().st_size > 10_000, screenshot


def test_mlflow_models_serve_answers_one_request_with_a_mask(pipeline_run, tmp_path_factory):
    """`mlflow models serve` of the champion (this environment, no env build) on 127.0.0.1: one request
    with a base64 JPEG gets the class-id mask at the image's size, the same as the SavedModel's."""
    import base64
    import signal
    import subprocess
    import sys
    import urllib.request

    import numpy as np
    import tensorflow as tf

    from tests.support.mlflow_server import free_loopback_port

    port = free_loopback_port()
    folder = tmp_path_factory.mktemp("serve")
    environment = {**os.environ, "MLFLOW_TRACKING_URI": pipeline_run["tracking_uri"],
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # uvicorn
    log = open(folder / "serve.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/e2e-voc@champion",
                                "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                               env=environment, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # its own process group: the CLI and its uvicorn
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (folder / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping within 120 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        jpeg = sorted((pipeline_run["workdir"] / "data").rglob("*.jpg"))[0].read_bytes()
        body = {"dataframe_split": {"columns": ["image"], "data": [[base64.b64encode(jpeg).decode("ascii")]]}}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            (mask,) = json.load(response)["predictions"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    served = tf.saved_model.load(pipeline_run["summary"].pushed_model).signatures["serving_default"]
    np.testing.assert_array_equal(np.array(mask), served(images=tf.constant([jpeg]))["class_ids"].numpy()[0])


def test_segpipe_track_relogs_a_run_and_reports_a_server_lost_while_logging(pipeline_run, capsys):
    from pipeline.cli import main
    from tests.support.outage_proxy import OutageProxy

    out, uri = pipeline_run["workdir"] / "out", pipeline_run["tracking_uri"]
    pushed = Path(pipeline_run["summary"].pushed_model)
    pushed_files = sorted(path.relative_to(pushed) for path in pushed.rglob("*"))
    # The server goes away once logging has started: at the tracker's first read of the run.
    proxy = OutageProxy(int(uri.rsplit(":", 1)[1]), marker=b"/runs/get?")
    proxy_uri = f"http://127.0.0.1:{proxy.port}"
    started = time.monotonic()
    assert main(["track", "--output", str(out), "--tracking-uri", proxy_uri]) == 1
    elapsed = time.monotonic() - started
    error = capsys.readouterr().err.strip().splitlines()
    assert proxy.cut.is_set() and proxy.forwarded_before_cut > 0
    # a warning per failed attempt and one for the run that could not be marked failed, then one error line
    # naming the step and the server
    warnings = [line.split(" W ", 1)[-1] for line in error[:-1]]
    assert warnings[:2] == [
        f"MLflow run lookup failed at {proxy_uri} (attempt {attempt} of 3, again in {delay} s): Connection refused"
        for attempt, delay in ((1, 2), (2, 4))]
    assert len(warnings) == 3 and warnings[2].startswith("MLflow: could not end run ")
    assert warnings[2].endswith(f" at {proxy_uri}: Connection refused")
    assert error[-1] == f"segpipe: MLflow run lookup failed at {proxy_uri} after 3 attempts: Connection refused"
    assert elapsed < 60
    assert sorted(path.relative_to(pushed) for path in pushed.rglob("*")) == pushed_files
    # Once the server is back (here: the real one), the run is logged again.
    assert main(["track", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    run_id = printed.split("MLflow run:")[1].split()[0]
    relogged = pipeline_run["client"].get_run(run_id)
    assert relogged.info.status == "FINISHED"
    assert relogged.data.metrics["eval/miou"] == pytest.approx(pipeline_run["second"].metrics["eval/miou"])


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
        """The newest resumable checkpoint's number (one per epoch), as its `checkpoint` state file names it:
        tf.train.CheckpointManager writes that file after the checkpoint's own files, and a restart restores
        what it names, so a run killed with `ckpt-2.index` already written but the state file not yet
        updated resumes from ckpt-1 (which the old glob for `ckpt-*.index` let happen, now and then)."""
        numbers = [0]
        for state in model_runs.glob("resume-*/**/checkpoint"):
            try:
                match = re.search(r'^model_checkpoint_path: ".*?ckpt-(\d+)"', state.read_text(), re.M)
            except FileNotFoundError:  # the backup is deleted when training ends
                continue
            if match:
                numbers.append(int(match.group(1)))
        return max(numbers)

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
