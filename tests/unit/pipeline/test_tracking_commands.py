"""`segpipe ui` on a run folder's MLflow store (a real server on 127.0.0.1, stopped after), and what a run
whose tracking failed after the push says: which step failed and how to log it again."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from components.core import sample_data
from components.tracking.mlflow_logging import PipelineRunStart, start_pipeline_run
from components.tracking.targets import TrackingTarget, local_artifact_location, local_tracking_uri
from pipeline.cli import main
from tests.support.mlflow_server import free_loopback_port

REPOSITORY = Path(__file__).resolve().parents[3]


def test_segpipe_ui_serves_the_store_of_an_output_folder_on_loopback(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    run_id = start_pipeline_run(TrackingTarget(local_tracking_uri(output)),
                                PipelineRunStart(experiment="ui-test", run_name="ui-run", source="segpipe run",
                                                 code_dir=str(REPOSITORY)), local_artifact_location(output))
    port = free_loopback_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "ui", "--output", str(output), "--port", str(port)],
        cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()  # printed once the server answers
        assert line == f"MLflow UI of {output}: http://127.0.0.1:{port} (Ctrl-C stops it)", process.stderr.read()
        assert process.stdout.readline().strip() == ("Runs in the model-training view: "
                                                     f"http://127.0.0.1:{port}/#/experiments?workflowType=machine_learning")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search", method="POST",
                                         data=json.dumps({"experiment_ids": ["1"]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            runs = json.load(response)["runs"]
        assert [run["info"]["run_id"] for run in runs] == [run_id]
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert listening.split() and all(f"127.0.0.1:{port}" in row for row in listening.strip().splitlines())
    finally:
        process.terminate()
        process.wait(timeout=30)
    # SIGTERM stops `segpipe ui` and the server it started: nothing listens on the port any more
    assert not subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout.strip()


def test_segpipe_ui_on_a_folder_without_a_store_is_one_line(tmp_path, capsys):
    assert main(["ui", "--output", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"segpipe: {tmp_path / 'mlflow.db'}: no MLflow store here (a `segpipe run --output {tmp_path}` "
                   "without a tracking server writes one)"]


def test_segpipe_track_on_a_folder_without_metadata_is_one_line(tmp_path, capsys):
    assert main(["track", "--output", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (f"segpipe: {tmp_path / 'metadata.sqlite'}: no ML Metadata here; "
                                               "pass the --output folder of a segpipe run")


def test_a_tracking_failure_after_the_push_says_the_model_is_in_place_and_how_to_log_again(tmp_path):
    from components.tracking.mlflow_logging import TrackingError
    from pipeline.config import DEFAULT_CONFIG, load_config
    from pipeline.local_runner import PipelineRunError
    from pipeline.pipeline import create_pipeline

    sample_data.write_voc_dataset(tmp_path / "data", num_images=4, image_size=(16, 16))
    pipeline = create_pipeline(load_config(DEFAULT_CONFIG), data_dir=str(tmp_path / "data"),
                               pipeline_root=str(tmp_path / "root"), serving_model_dir=str(tmp_path / "serving"),
                               tracking_uri="http://127.0.0.1:9")
    states = {component.id: "finished" for component in pipeline.components}
    states["MlflowTracker"] = "failed"
    cause = TrackingError("MLflow metric logging failed at http://127.0.0.1:9 after 3 attempts: Connection refused")
    lines = str(PipelineRunError(pipeline, cause, states, tmp_path / "out")).splitlines()
    assert lines[0] == ("step MlflowTracker of pipeline 'segpipe-voc-unet' failed: MLflow metric logging failed at "
                        "http://127.0.0.1:9 after 3 attempts: Connection refused")
    assert lines[-2] == ("  the model, its blessing and the push are in place; to log the run to MLflow again: "
                         f"segpipe track --output {tmp_path / 'out'}")
