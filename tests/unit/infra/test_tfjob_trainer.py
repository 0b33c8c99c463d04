"""The multi-worker Trainer's TFJob (`infra/k8s/training/tfjob-trainer.yaml`), run here: its chief's and
worker's exact container command, with the TF_CONFIG the training operator gives them (two processes on
127.0.0.1), on a Trainer invocation as Kubeflow Pipelines hands it to the compiled Trainer (its
parameters from the compiled spec, a run's values for the runtime parameters, real tiny artifacts).
They train one model together: the chief writes it and the model-run folder, with the run's epochs
and learning rate."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.kubeflow_runner import DEFAULT_IMAGE, compile_pipeline
from tests.support.mlflow_server import free_loopback_port
from tests.support.tiny_artifacts import IMAGE_SIZE

REPOSITORY = Path(__file__).resolve().parents[3]
TFJOB = REPOSITORY / "infra" / "k8s" / "training" / "tfjob-trainer.yaml"
RUN_VALUES = {"training_epochs": 1, "learning_rate": 0.02}
"""What the run sets; the compiled defaults (the config below) are 2 epochs at 0.003."""


def _executor_input(spec: dict, artifacts, outputs: Path) -> dict:
    """The Trainer task's executor input as KFP's driver resolves it: constants from the spec, the run's
    values for the runtime parameters, the artifacts' URIs."""
    task = spec["root"]["dag"]["tasks"]["Trainer"]
    parameters = {name: source["runtimeValue"]["constant"] if "runtimeValue" in source
                  else RUN_VALUES[source["componentInputParameter"]]
                  for name, source in task["inputs"]["parameters"].items()}

    def artifact(title: str, uri: Path, **metadata) -> dict:
        return {"artifacts": [{"name": f"segpipe/{uri.name}", "type": {"schemaTitle": title}, "uri": str(uri),
                               "metadata": metadata}]}

    return {"inputs": {"parameterValues": parameters,
                       "artifacts": {"examples": artifact("tfx.Examples", artifacts.examples,
                                                          split_names='["train", "val"]'),
                                     "schema": artifact("tfx.Schema", artifacts.schema),
                                     "transform_graph": artifact("tfx.TransformGraph", artifacts.transform_graph)}},
            "outputs": {"artifacts": {"model": artifact("tfx.Model", outputs / "model"),
                                      "model_run": artifact("tfx.ModelRun", outputs / "model_run")},
                        # Relative: each replica writes its own, as each pod writes its local file.
                        "outputFile": "kfp_outputs/output_metadata.json"}}


def _inputs_spec(spec: dict) -> str:
    args = spec["deploymentSpec"]["executors"]["Trainer_executor"]["container"]["args"]
    return args[args.index("--json_serialized_inputs_spec_args") + 1]


def _replica_command(container: dict, values: dict[str, str]) -> list[str]:
    """The container's command and arguments, `$(VAR)` expanded as Kubernetes expands them; `python` is
    this environment's interpreter (the image's `python` has the same packages)."""
    command = [sys.executable if part == "python" else part for part in container["command"]]
    return command + [re.sub(r"\$\((\w+)\)", lambda match: values[match.group(1)], arg)
                                   for arg in container["args"]]


def test_chief_and_worker_run_the_compiled_trainer_on_one_model_with_the_runs_values(tiny_artifacts, tmp_path):
    config = load_config(DEFAULT_CONFIG, [
        f"model.image_size={list(IMAGE_SIZE)}", "model.unet.base_filters=2", "model.unet.depth=1",
        "training.epochs=2", "training.steps_per_epoch=2", "training.batch_size=4", "training.eval_steps=1",
        "training.seed=0", "training.schedule.name=constant"])
    spec = yaml.safe_load(compile_pipeline(config, str(tmp_path / "segpipe.yaml"), data_dir="gs://b/VOCdevkit",
                                           pipeline_root="gs://b/root", image=DEFAULT_IMAGE).read_text())
    outputs = tmp_path / "outputs"
    values = {"EXECUTOR_INPUT": json.dumps(_executor_input(spec, tiny_artifacts, outputs)),
              "INPUTS_SPEC": _inputs_spec(spec)}
    job = yaml.safe_load(TFJOB.read_text())
    cluster = {"chief": [f"127.0.0.1:{free_loopback_port()}"], "worker": [f"127.0.0.1:{free_loopback_port()}"]}
    replicas = []
    for kind in ("Chief", "Worker"):
        (container,) = job["spec"]["tfReplicaSpecs"][kind]["template"]["spec"]["containers"]
        plain_env = {variable["name"]: variable["value"] for variable in container["env"] if "value" in variable}
        workdir = tmp_path / kind.lower()
        workdir.mkdir()
        environment = {**os.environ, **plain_env, "PYTHONPATH": os.pathsep.join(
                           filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH", "")])),
                       "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind.lower(), "index": 0}})}
        replicas.append(subprocess.Popen(_replica_command(container, values), cwd=workdir, env=environment,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [replica.communicate(timeout=600)[0] for replica in replicas]
    for replica, log in zip(replicas, logs):
        assert replica.returncode == 0, log[-4000:]
    for kind, log in zip(("chief", "worker"), logs):  # TF's own log: one strategy over both processes
        assert f"task_type = '{kind}', task_id = 0, num_workers = 2" in log, log[-4000:]

    serving = outputs / "model" / "Format-Serving"
    assert (serving / "saved_model.pb").is_file()  # written by the chief only
    assert sorted(path.name for path in outputs.iterdir()) == ["model", "model_run"]
    assert not list((outputs / "model").glob(".worker-*"))  # the worker's copy was removed
    history = json.loads((outputs / "model_run" / "history.json").read_text())
    assert history["steps"][-1] == RUN_VALUES["training_epochs"] * config.training.steps_per_epoch
    assert history["learning_rate"][-1] == pytest.approx(RUN_VALUES["learning_rate"])
    for kind in ("chief", "worker"):
        metadata = json.loads((tmp_path / kind / "kfp_outputs" / "output_metadata.json").read_text())
        assert metadata["artifacts"]["model"]["artifacts"][0]["uri"] == str(outputs / "model")
