"""`SegmentationTrainer`: TFX's Trainer (same inputs, outputs and `run_fn`) with the two training values a
Kubeflow user changes per run as component parameters of their own: `training_epochs` and `learning_rate`.

Why a component of its own: a compiled Kubeflow pipeline's runtime parameter reaches a component only
as a top-level parameter of a primitive type. `KubeflowV2DagRunner` (TFX 1.16) writes a
`RuntimeParameter` placed inside `custom_config`, or inside a proto such as `TrainArgs`
(`{"num_steps": param}`), into the spec as a constant JSON object of the parameter itself, never as a
pipeline input; and the Trainer's `custom_config` as a whole can only be one string parameter (a JSON
blob to edit). So the executor puts the two values where `run_fn` reads them before TFX's
`GenericExecutor` runs it: `training.epochs` and `training.optimizer.learning_rate` of `custom_config`,
and `TrainArgs.num_steps` = epochs x `training.steps_per_epoch`. `run_fn` validates the configuration it
rebuilds, so a bad value (0 epochs, a negative rate) fails naming the key.

Local runs give the config's own values (the same numbers `custom_config` already holds), compiled
pipelines the runtime parameters: one graph, one code path.
"""

from __future__ import annotations

import json
from typing import Any

from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils, proto_utils

TRAINING_EPOCHS_KEY = "training_epochs"
LEARNING_RATE_KEY = "learning_rate"


def apply_run_values(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The Trainer's execution properties with `training_epochs` and `learning_rate` (when set) written
    into `custom_config` and `train_args`, and removed as keys of their own.

    Raises:
        ValueError: `training_epochs` is set but `custom_config` has no `training.steps_per_epoch`.
    """
    properties = dict(exec_properties)
    epochs = properties.pop(TRAINING_EPOCHS_KEY, None)
    learning_rate = properties.pop(LEARNING_RATE_KEY, None)
    if epochs is None and learning_rate is None:
        return properties
    custom_config = json_utils.loads(properties[standard_component_specs.CUSTOM_CONFIG_KEY])
    training = custom_config["training"]
    if learning_rate is not None:
        training["optimizer"]["learning_rate"] = float(learning_rate)
    if epochs is not None:
        training["epochs"] = int(epochs)
        train_args = proto_utils.json_to_proto(properties[standard_component_specs.TRAIN_ARGS_KEY],
                                               trainer_pb2.TrainArgs())
        train_args.num_steps = max(int(epochs), 0) * int(training["steps_per_epoch"])
        properties[standard_component_specs.TRAIN_ARGS_KEY] = proto_utils.proto_to_json(train_args)
    properties[standard_component_specs.CUSTOM_CONFIG_KEY] = json_utils.dumps(custom_config)
    return properties


class Executor(trainer_executor.GenericExecutor):
    """TFX's generic Trainer executor, after `apply_run_values`."""

    def Do(self, input_dict, output_dict, exec_properties):  # pylint: disable=invalid-name  # TFX's name
        super().Do(input_dict, output_dict, apply_run_values(exec_properties))


class SegmentationTrainerSpec(standard_component_specs.TrainerSpec):
    """TFX's `TrainerSpec` and the two run values."""

    PARAMETERS = {**standard_component_specs.TrainerSpec.PARAMETERS,
                  TRAINING_EPOCHS_KEY: ExecutionParameter(type=int, optional=True),
                  LEARNING_RATE_KEY: ExecutionParameter(type=float, optional=True)}


class SegmentationTrainer(base_component.BaseComponent):
    """The Trainer with `training_epochs` and `learning_rate` parameters (plain values or
    `RuntimeParameter`s). Outputs `model` and `model_run`, as TFX's Trainer."""

    SPEC_CLASS = SegmentationTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, run_fn: str, examples: channel.BaseChannel, transform_graph: channel.BaseChannel,
                 schema: channel.BaseChannel, train_args: trainer_pb2.TrainArgs, eval_args: trainer_pb2.EvalArgs,
                 custom_config: dict[str, Any], training_epochs: Any = None, learning_rate: Any = None):
        """Builds the component.

        Args:
            run_fn: the training entry point (`module.function`).
            examples, transform_graph, schema: the input channels, as TFX's Trainer takes them.
            train_args, eval_args: TFX's; `train_args.num_steps` is replaced when `training_epochs` is set.
            custom_config: JSON-able; must hold `training.steps_per_epoch` (and `training.optimizer`).
            training_epochs: int or an int `RuntimeParameter`; None keeps `custom_config`'s.
            learning_rate: float or a float `RuntimeParameter`; None keeps `custom_config`'s.
        """
        json.dumps(custom_config)  # a TypeError here rather than in the executor
        spec = SegmentationTrainerSpec(
            examples=examples, transform_graph=transform_graph, schema=schema, base_model=None,
            hyperparameters=None, train_args=train_args, eval_args=eval_args, module_file=None,
            module_path=None, run_fn=run_fn, custom_config=json_utils.dumps(custom_config),
            training_epochs=training_epochs, learning_rate=learning_rate,
            model=channel.Channel(type=standard_artifacts.Model),
            model_run=channel.Channel(type=standard_artifacts.ModelRun))
        super().__init__(spec=spec)
