"""The Trainer under tf.distribute: two replicas (two logical CPU devices) train like one replica with the
same global batch. Each run has its own process: two MirroredStrategy objects over two logical devices
in one process crash in TensorFlow (`CollectiveReduceV2 ... Shape mismatch`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from components.core.config import PipelineConfig
from components.trainer.run import trainer_custom_config
from tests.support.tiny_artifacts import IMAGE_SIZE, TinyArtifacts

REPOSITORY = Path(__file__).resolve().parents[3]

_RUN_WITH_REPLICAS = """
import json, sys
from pathlib import Path
import tensorflow as tf
arguments = json.loads(sys.argv[1])
if arguments["replicas"] > 1:  # before any other TensorFlow op
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * arguments["replicas"])
from components.trainer import strategy
from components.trainer.run import run_fn
from tests.support.tiny_artifacts import TinyArtifacts, trainer_fn_args
tiny = TinyArtifacts(**{name: Path(path) for name, path in arguments["artifacts"].items()})
run_fn(trainer_fn_args(tiny, Path(arguments["work"]), arguments["custom_config"], arguments["train_steps"]))
print(json.dumps({"replicas": strategy.make_strategy().num_replicas_in_sync}))
"""


def _start(tiny_artifacts, work: Path, replicas: int) -> subprocess.Popen:
    config = PipelineConfig.from_dict({
        # One batch of 4 and two replicas' batches of 2 differ only in the batch-normalisation statistics;
        # a U-Net of depth 1 keeps that effect small.
        "model": {"image_size": list(IMAGE_SIZE), "unet": {"base_filters": 2, "depth": 1}},
        "training": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 4, "eval_steps": 1, "seed": 0,
                     "augmentation": {"horizontal_flip": False}}})
    arguments = {"artifacts": {name: str(getattr(tiny_artifacts, name)) for name in TinyArtifacts.__dataclass_fields__},
                 "work": str(work), "custom_config": trainer_custom_config(config, "pascal_voc"),
                 "train_steps": 4, "replicas": replicas}
    return subprocess.Popen([sys.executable, "-c", _RUN_WITH_REPLICAS, json.dumps(arguments)], cwd=REPOSITORY,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen, work: Path) -> dict:
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    history = json.loads((work / "model_run" / "history.json").read_text())
    return {"replicas": json.loads(stdout.strip().splitlines()[-1])["replicas"], "history": history}


def test_two_replicas_train_like_one_with_the_same_global_batch(tiny_artifacts, tmp_path):
    processes = {replicas: _start(tiny_artifacts, tmp_path / str(replicas), replicas) for replicas in (1, 2)}
    one, two = (_finish(processes[replicas], tmp_path / str(replicas)) for replicas in (1, 2))
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["history"]["steps"] == one["history"]["steps"] == [2.0, 4.0]
    # Stated tolerance: losses within 5 %. The same examples reach the model in the same order; what
    # differs is that each replica normalises its own half batch (batch norm is not synchronised).
    np.testing.assert_allclose(two["history"]["loss"], one["history"]["loss"], rtol=0.05)
    np.testing.assert_allclose(two["history"]["val_loss"], one["history"]["val_loss"], rtol=0.05)
