"""`SegmentationTrainer`: the run values (epochs, learning rate) reach `run_fn`'s config and TrainArgs."""

from __future__ import annotations

import json

import pytest
from tfx.proto import trainer_pb2
from tfx.utils import proto_utils

from components.core.config import TRAINER_SECTIONS, PipelineConfig
from components.trainer.component import SegmentationTrainer, apply_run_values
from components.trainer.run import trainer_custom_config
from pipeline.config import DEFAULT_CONFIG, load_config


def _exec_properties(config: PipelineConfig, **run_values) -> dict:
    return {"custom_config": json.dumps(trainer_custom_config(config, "pascal_voc")),
            "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(splits=["train"],
                                                                          num_steps=config.training.total_steps)),
            "run_fn": "components.trainer.run.run_fn", **run_values}


def _rebuilt(properties: dict) -> PipelineConfig:
    """The configuration run_fn rebuilds from custom_config."""
    custom_config = json.loads(properties["custom_config"])
    return PipelineConfig.from_dict({name: custom_config[name] for name in TRAINER_SECTIONS})


def test_epochs_and_learning_rate_replace_the_compiled_ones():
    config = load_config(DEFAULT_CONFIG, ["training.epochs=2", "training.steps_per_epoch=5"])
    properties = apply_run_values(_exec_properties(config, training_epochs=7, learning_rate=0.25))
    assert set(properties) == {"custom_config", "train_args", "run_fn"}
    training = json.loads(properties["custom_config"])["training"]
    assert (training["epochs"], training["optimizer"]["learning_rate"]) == (7, 0.25)
    train_args = proto_utils.json_to_proto(properties["train_args"], trainer_pb2.TrainArgs())
    assert (train_args.num_steps, list(train_args.splits)) == (35, ["train"])
    # What run_fn rebuilds is the configuration with those values.
    rebuilt = _rebuilt(properties)
    assert rebuilt.training.total_steps == 35 and rebuilt.training.optimizer.learning_rate == 0.25


def test_without_run_values_nothing_changes():
    config = load_config(DEFAULT_CONFIG)
    properties = _exec_properties(config)
    assert apply_run_values(properties) == properties


def test_a_bad_run_value_fails_naming_the_key_when_run_fn_rebuilds_the_config():
    from components.core.hyperparams import ConfigError

    properties = apply_run_values(_exec_properties(load_config(DEFAULT_CONFIG), training_epochs=0))
    with pytest.raises(ConfigError, match="'training.epochs' must be at least 1"):
        _rebuilt(properties)


def test_the_component_declares_both_parameters_beside_the_trainers():
    from tfx import v1 as tfx

    from components.core.label_maps import schemas_dir

    config = load_config(DEFAULT_CONFIG)
    schema = tfx.components.ImportSchemaGen(schema_file=str(schemas_dir() / "raw_schema.pbtxt"))
    examples = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples)
    graph = tfx.dsl.Channel(type=tfx.types.standard_artifacts.TransformGraph)
    trainer = SegmentationTrainer(run_fn="components.trainer.run.run_fn", examples=examples, transform_graph=graph,
                                  schema=schema.outputs["schema"], train_args=tfx.proto.TrainArgs(num_steps=3),
                                  eval_args=tfx.proto.EvalArgs(num_steps=1),
                                  custom_config=trainer_custom_config(config, "pascal_voc"),
                                  training_epochs=tfx.dsl.experimental.RuntimeParameter(name="e", ptype=int, default=2),
                                  learning_rate=0.5)
    assert trainer.exec_properties["learning_rate"] == 0.5
    assert trainer.exec_properties["training_epochs"].name == "e"
    assert set(trainer.outputs) == {"model", "model_run"}
    with pytest.raises(TypeError):
        SegmentationTrainer(run_fn="m.f", examples=examples, transform_graph=graph, schema=schema.outputs["schema"],
                            train_args=tfx.proto.TrainArgs(), eval_args=tfx.proto.EvalArgs(), custom_config={},
                            learning_rate=tfx.dsl.experimental.RuntimeParameter(name="lr", ptype=str, default="x"))
