"""Trainer options on real tiny artifacts: a Trainer killed mid-training resumes from its last checkpoint in
the next execution (a new model-run folder, the same inputs and configuration);
mixed precision and XLA train and export; plateau and early-stopping settings are validated and wired."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from components import artifacts
from components.core.config import PipelineConfig
from components.core.hyperparams import ConfigError
from components.core.label_maps import load_label_map
from components.trainer.model_factory import build_compiled_model, float32_copy
from components.trainer.run import resumable_backup_dir, run_fn, trainer_custom_config
from tests.support.tiny_artifacts import IMAGE_SIZE, TinyArtifacts, trainer_fn_args

REPOSITORY = Path(__file__).resolve().parents[3]


def _config(**training) -> PipelineConfig:
    return PipelineConfig.from_dict({
        "model": {"image_size": list(IMAGE_SIZE), "unet": {"base_filters": 2, "depth": 2}},
        "training": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "eval_steps": 1, "seed": 0, **training}})


_RUN_IN_CHILD = """
import json, sys
from pathlib import Path
from components.trainer.run import run_fn
from tests.support.tiny_artifacts import TinyArtifacts, trainer_fn_args
arguments = json.loads(sys.argv[1])
tiny = TinyArtifacts(**{name: Path(path) for name, path in arguments["artifacts"].items()})
run_fn(trainer_fn_args(tiny, Path(arguments["work"]), arguments["custom_config"], arguments["train_steps"]))
"""


def test_a_trainer_killed_mid_training_resumes_from_its_last_checkpoint(tiny_artifacts, tmp_path):
    # 24 steps in epochs of 2, a resumable checkpoint every 2 steps; the child is killed once one exists.
    custom_config = trainer_custom_config(_config(checkpoint_every_steps=2), "pascal_voc")
    arguments = {"artifacts": {name: str(getattr(tiny_artifacts, name)) for name in TinyArtifacts.__dataclass_fields__},
                 "work": str(tmp_path), "custom_config": custom_config, "train_steps": 24}
    child = subprocess.Popen([sys.executable, "-c", _RUN_IN_CHILD, json.dumps(arguments)], cwd=REPOSITORY,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backup = Path(resumable_backup_dir(trainer_fn_args(tiny_artifacts, tmp_path, custom_config, train_steps=24)))
    assert backup.parent == tmp_path  # beside the model-run folders, not in one

    def saves() -> int:
        """The number of the newest backup checkpoint (`ckpt-N.index`, one more per save)."""
        return max((int(match.group(1)) for path in backup.rglob("ckpt-*.index")
                    if (match := re.fullmatch(r"ckpt-(\d+)\.index", path.name))), default=0)

    # Killed after the third save (step 6): the checkpoint then records a later epoch than the first, so a
    # resumed run and a fresh one log different epochs whatever moment of the epoch the kill hits.
    deadline = time.monotonic() + 240
    while saves() < 3 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert list(backup.rglob("*.index")), "the child ended before writing a resumable checkpoint"
    assert not (tmp_path / "model" / "Format-Serving" / "saved_model.pb").exists()

    # The next execution: TFX gives it a new model-run folder; the same inputs and configuration find the
    # killed one's checkpoint.
    fn_args = trainer_fn_args(tiny_artifacts, tmp_path, custom_config, train_steps=24)
    fn_args.model_run_dir = str(tmp_path / "model_run_next_execution")
    assert resumable_backup_dir(fn_args) == str(backup)
    other = trainer_fn_args(tiny_artifacts, tmp_path, {**custom_config, "label_map": "cityscapes"}, train_steps=24)
    assert resumable_backup_dir(other) != str(backup)  # another configuration: another checkpoint
    run_fn(fn_args)
    history = json.loads((tmp_path / "model_run_next_execution" / artifacts.HISTORY_FILE).read_text())
    # A fresh start would log all 12 epochs, the first ending at step 2; the resumed run logs only those
    # from the checkpoint's epoch on, the first ending at step 6 or later, and it still stops at step 24.
    assert 0 < len(history["loss"]) < 12
    assert history["steps"][0] >= 6 and history["steps"][-1] == 24
    assert not backup.exists()  # deleted once training finished


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_and_exports_a_float32_model_with_the_trained_weights(tiny_artifacts, tmp_path, policy):
    fn_args = trainer_fn_args(tiny_artifacts, tmp_path, trainer_custom_config(_config(mixed_precision=policy),
                                                                               "pascal_voc"), train_steps=2)
    run_fn(fn_args)
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # not left behind for the process
    history = json.loads(open(os.path.join(fn_args.model_run_dir, artifacts.HISTORY_FILE)).read())
    assert np.isfinite(history["loss"]).all()
    model = tf.saved_model.load(fn_args.serving_model_dir)
    files = tf.io.gfile.glob(str(tiny_artifacts.examples / "Split-val" / "*"))
    batch = tf.stack(list(tf.data.TFRecordDataset(files, compression_type="GZIP").take(1)))
    assert model.signatures["serve_examples"](examples=batch)["probabilities"].dtype == tf.float32
    # The export computes in float32: no float16 or bfloat16 op in the serving graph (the copy's weights: next test).
    graph = model.signatures["serving_default"].graph.as_graph_def()
    dtypes = {attr.type for function in graph.library.function for node in function.node_def
              for attr in node.attr.values() if attr.type}
    assert not dtypes & {tf.float16.as_datatype_enum, tf.bfloat16.as_datatype_enum}


def test_the_float32_copy_of_a_mixed_precision_model_predicts_as_it_does():
    config = _config(mixed_precision="mixed_bfloat16")
    trained = build_compiled_model(config, load_label_map("pascal_voc"), total_steps=4, global_batch_size=2)
    assert "bfloat16" in {layer.compute_dtype for layer in trained.layers}
    copy = float32_copy(trained, config, num_classes=21)
    assert {layer.compute_dtype for layer in copy.layers if layer.weights} == {"float32"}
    images = np.random.default_rng(0).normal(size=(2, *IMAGE_SIZE, 3)).astype("float32")
    np.testing.assert_allclose(copy(images).numpy(), trained(images).numpy(), atol=0.05)  # bfloat16 rounding
    float32_model = build_compiled_model(_config(), load_label_map("pascal_voc"), 4, 2)
    assert float32_copy(float32_model, _config(), 21) is float32_model


def test_an_unknown_precision_policy_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"'training.mixed_precision' must be 'float32', 'mixed_float16' or "
                                          r"'mixed_bfloat16'"):
        _config(mixed_precision="bfloat16")


def test_gradient_accumulation_trains_through_run_fn_and_exports(tiny_artifacts, tmp_path):
    config = _config(gradient_accumulation_steps=2)
    fn_args = trainer_fn_args(tiny_artifacts, tmp_path, trainer_custom_config(config, "pascal_voc"), train_steps=3)
    run_fn(fn_args)
    history = json.loads(open(os.path.join(fn_args.model_run_dir, artifacts.HISTORY_FILE)).read())
    assert history["steps"][-1] == 3.0 and np.isfinite(history["loss"]).all()  # optimizer steps, not micro-batches
    assert "serving_default" in tf.saved_model.load(fn_args.serving_model_dir).signatures


def test_xla_compiled_training_steps_match_the_plain_ones():
    label_map = load_label_map("pascal_voc")
    images = np.random.default_rng(0).normal(size=(2, *IMAGE_SIZE, 3)).astype(np.float32)
    masks = np.random.default_rng(1).integers(0, 21, size=(2, *IMAGE_SIZE))
    losses = []
    for jit_compile in (False, True):
        tf.keras.utils.set_random_seed(0)
        model = build_compiled_model(_config(jit_compile=jit_compile), label_map, total_steps=2, global_batch_size=2)
        losses.append([model.train_on_batch(images, masks)[0] for _ in range(2)])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-3)


def test_reduce_on_plateau_needs_a_constant_schedule_and_gets_a_settable_rate():
    with pytest.raises(ConfigError, match="'training.reduce_on_plateau_patience' needs training.schedule.name 'constant'"):
        PipelineConfig.from_dict({"training": {"reduce_on_plateau_patience": 2}})
    config = _config(reduce_on_plateau_patience=2, schedule={"name": "constant"})
    model = build_compiled_model(config, load_label_map("pascal_voc"), total_steps=2, global_batch_size=2)
    model.optimizer.learning_rate = 1e-4  # what ReduceLROnPlateau does
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)
