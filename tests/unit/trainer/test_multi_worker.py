"""Two Trainer workers on 127.0.0.1 (TF_CONFIG, MultiWorkerMirroredStrategy) train together through the same
`run_fn` and the same artifact folders: they end with identical weights, and only the chief's exported
model and history land in the model folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from components.core.config import PipelineConfig
from components.trainer.run import trainer_custom_config
from tests.support.mlflow_server import free_loopback_port
from tests.support.tiny_artifacts import IMAGE_SIZE, TinyArtifacts

REPOSITORY = Path(__file__).resolve().parents[3]

# The child wraps the export step to report a checksum of the weights it exports (the export still runs).
_WORKER = """
import hashlib, json, sys
from pathlib import Path
from components.trainer import run
from tests.support.tiny_artifacts import TinyArtifacts, trainer_fn_args
arguments = json.loads(sys.argv[1])
exported = {}
original_export = run.export_serving_model
def export_and_report(model, transform_output, export_dir, *args):
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    exported.update(checksum=digest.hexdigest(), export_dir=export_dir)
    original_export(model, transform_output, export_dir, *args)
run.export_serving_model = export_and_report
tiny = TinyArtifacts(**{name: Path(path) for name, path in arguments["artifacts"].items()})
run.run_fn(trainer_fn_args(tiny, Path(arguments["work"]), arguments["custom_config"], arguments["train_steps"]))
print(json.dumps(exported))
"""


def test_two_workers_train_together_and_only_the_chief_exports(tiny_artifacts, tmp_path):
    config = PipelineConfig.from_dict({
        "model": {"image_size": list(IMAGE_SIZE), "unet": {"base_filters": 2, "depth": 1}},
        "training": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 4, "eval_steps": 1, "seed": 0}})
    arguments = json.dumps({"artifacts": {name: str(getattr(tiny_artifacts, name))
                                          for name in TinyArtifacts.__dataclass_fields__},
                            "work": str(tmp_path), "custom_config": trainer_custom_config(config, "pascal_voc"),
                            "train_steps": 4})
    cluster = {"worker": [f"127.0.0.1:{free_loopback_port()}", f"127.0.0.1:{free_loopback_port()}"]}
    workers = []
    for index in range(2):
        environment = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                              "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen([sys.executable, "-c", _WORKER, arguments], cwd=REPOSITORY, env=environment,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    chief, other = (json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs)
    assert chief["checksum"] == other["checksum"]  # the same weights on both workers
    serving = tmp_path / "model" / "Format-Serving"
    assert chief["export_dir"] == str(serving) and (serving / "saved_model.pb").is_file()
    assert other["export_dir"] != str(serving) and not Path(other["export_dir"]).exists()
    history = json.loads((tmp_path / "model_run" / "history.json").read_text())
    assert history["steps"][-1] == 4.0
