"""`run_fn` on real tiny artifacts: it trains exactly the steps TFX gives it (with the class-weighted loss, whose
weights come from the transform's analyzers), logs per-epoch curves with the learning rate, and exports a
model whose example-taking signatures work and give what the transform graph and the network give by hand."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components import artifacts
from components.core import features
from components.core.config import PipelineConfig
from components.core.hyperparams import ConfigError
from components.core.label_maps import load_label_map
from components.trainer import strategy as strategy_lib
from components.trainer.data import read_transform_constants
from components.trainer.model_factory import class_weights_of
from components.trainer.export import SIGNATURES
from components.trainer.run import run_fn, trainer_custom_config
from tests.support.tiny_artifacts import IMAGE_SIZE, trainer_fn_args


def _custom_config(**training) -> dict:
    config = PipelineConfig.from_dict({
        "model": {"image_size": list(IMAGE_SIZE), "unet": {"base_filters": 2, "depth": 2}},
        "training": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "seed": 0, **training}})
    return trainer_custom_config(config, "pascal_voc")


@pytest.fixture(scope="module")
def trained(tiny_artifacts, tmp_path_factory):
    work = tmp_path_factory.mktemp("run_fn")
    # TFX asks for 3 steps although the config's epochs x steps_per_epoch is 2 (a Kubeflow runtime
    # parameter on steps, for instance): run_fn trains 3, as 2 epochs of 2 and 1 steps.
    fn_args = trainer_fn_args(tiny_artifacts, work, _custom_config(loss={"class_weights": "median_frequency"}),
                              train_steps=3)
    run_fn(fn_args)
    return fn_args


def test_run_fn_trains_exactly_the_steps_tfx_gives_it(trained):
    history = json.loads(open(os.path.join(trained.model_run_dir, artifacts.HISTORY_FILE)).read())
    assert history["steps"] == [2.0, 3.0]
    assert {"loss", "miou", "val_loss", "val_miou", "learning_rate"} <= set(history)
    assert history["learning_rate"][1] < history["learning_rate"][0]  # cosine decay
    assert os.path.isdir(os.path.join(trained.model_run_dir, artifacts.TENSORBOARD_DIR))


def test_exported_signatures_take_serialized_examples(trained, tiny_artifacts):
    model = tf.saved_model.load(trained.serving_model_dir)
    assert set(SIGNATURES) <= set(model.signatures)
    files = tf.io.gfile.glob(str(tiny_artifacts.examples / "Split-val" / "*"))
    batch = tf.stack(list(tf.data.TFRecordDataset(files, compression_type="GZIP").take(2)))
    served = model.signatures["serve_examples"](examples=batch)
    assert served["class_ids"].shape == (2, *IMAGE_SIZE)
    assert served["probabilities"].shape[:3] == (2, *IMAGE_SIZE)
    np.testing.assert_allclose(tf.reduce_sum(served["probabilities"], -1).numpy(), 1.0, atol=1e-5)
    np.testing.assert_array_equal(tf.argmax(served["probabilities"], -1).numpy(), served["class_ids"].numpy())
    transformed = model.signatures["transform_features"](examples=batch)
    assert transformed["image"].shape == (2, *IMAGE_SIZE, 3) and transformed["mask"].shape == (2, *IMAGE_SIZE)
    assert [value.decode() for value in model.signatures["slice_features"](examples=batch)["size_bucket"].numpy()] \
        == ["le256", "le256"]


def test_served_masks_equal_the_transform_graph_and_the_network_run_by_hand(trained, tiny_artifacts):
    import tensorflow_transform as tft

    model = tf.saved_model.load(trained.serving_model_dir)
    files = tf.io.gfile.glob(str(tiny_artifacts.examples / "Split-val" / "*"))
    batch = tf.stack(list(tf.data.TFRecordDataset(files, compression_type="GZIP").take(3)))
    transform_output = tft.TFTransformOutput(str(tiny_artifacts.transform_graph))
    transformed = transform_output.transform_features_layer()(
        tf.io.parse_example(batch, transform_output.raw_feature_spec()))
    logits = model(transformed[features.IMAGE], training=False)
    served = model.signatures["serve_examples"](examples=batch)
    np.testing.assert_array_equal(served[features.CLASS_IDS].numpy(), tf.argmax(logits, -1).numpy())
    np.testing.assert_array_equal(served[features.CONTENT_SIZE].numpy(), transformed[features.CONTENT_SIZE].numpy())


def test_class_weights_come_from_the_transform_output_or_the_error_names_the_key(trained, tiny_artifacts):
    label_map = load_label_map("pascal_voc")
    import tensorflow_transform as tft

    constants = read_transform_constants(trained.train_files, trained.data_accessor,
                                         tft.TFTransformOutput(str(tiny_artifacts.transform_graph)))
    counts = constants[features.CLASS_PIXEL_COUNTS]
    assert counts.shape == (21,) and counts.sum() > 0
    for weighting in ("inverse_frequency", "median_frequency"):
        config = PipelineConfig.from_dict({"training": {"loss": {"class_weights": weighting}}})
        weights = class_weights_of(config, constants, label_map)
        np.testing.assert_array_equal(weights, constants[features.CLASS_WEIGHTS[weighting]])
        assert ((weights > 0) == (counts > 0)).all()
    assert class_weights_of(PipelineConfig(), constants, label_map) is None
    config = PipelineConfig.from_dict({"training": {"loss": {"class_weights": "inverse_frequency"}}})
    with pytest.raises(ConfigError, match="'training.loss.class_weights' 'inverse_frequency' needs the class "
                                          "statistics of the transform output"):
        class_weights_of(config, {features.NORMALIZATION_MEAN: np.zeros(3)}, label_map)
    with pytest.raises(ConfigError, match="'training.loss.class_weights' .* no labelled pixel"):
        class_weights_of(config, {features.CLASS_WEIGHTS["inverse_frequency"]: np.zeros(21)}, label_map)


def test_a_batch_that_does_not_split_across_replicas_is_an_error_naming_the_key():
    assert strategy_lib.check_global_batch(8, 2) == 8
    for batch_size, replicas in ((1, 2), (3, 2)):
        with pytest.raises(ConfigError, match="'training.batch_size' .* multiple of the 2 replicas"):
            strategy_lib.check_global_batch(batch_size, replicas)
    assert strategy_lib.check_global_batch(8, 2, accumulation_steps=4) == 8
    with pytest.raises(ConfigError, match="'training.batch_size' 8 must be a multiple of the 2 replicas times "
                                          "training.gradient_accumulation_steps 8"):
        strategy_lib.check_global_batch(8, 2, accumulation_steps=8)
    with pytest.raises(ConfigError, match="'training.gradient_accumulation_steps' must divide training.batch_size 8"):
        PipelineConfig.from_dict({"training": {"gradient_accumulation_steps": 3}})


def test_the_chief_is_told_by_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert strategy_lib.is_chief() and not strategy_lib.is_multi_worker()
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert strategy_lib.is_multi_worker() and not strategy_lib.is_chief()
    assert strategy_lib.worker_export_dir("/m/Format-Serving") == "/m/.worker-1-export"
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert strategy_lib.is_chief() and strategy_lib.worker_export_dir("/m/Format-Serving") == "/m/Format-Serving"
