"""`ThresholdedEvaluator`: TFX's Evaluator (same inputs, outputs and TFMA executor) with the mIoU
blessing threshold as a component parameter of its own, `miou_threshold`.

Why: a compiled Kubeflow pipeline's runtime parameter reaches a component only as a top-level parameter
of a primitive type; inside the `eval_config` proto, `KubeflowV2DagRunner` (TFX 1.16) would write it as
a constant. The executor sets the lower bound of the eval config's mIoU value threshold
(`eval_config.set_miou_threshold`) to the parameter's value, checked as `evaluation.miou_threshold`
is, before TFX's executor runs. Local runs give the config's own threshold (the value the eval config
already holds), compiled pipelines the runtime parameter.
"""

from __future__ import annotations

from typing import Any, Sequence

import tensorflow_model_analysis as tfma
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils, proto_utils

from components.core.config import EvaluationConfig
from components.core.hyperparams import build
from components.evaluator.eval_config import set_miou_threshold

MIOU_THRESHOLD_KEY = "miou_threshold"


def apply_miou_threshold(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The Evaluator's execution properties with `miou_threshold` (when set) written into `eval_config`
    and removed as a key of its own.

    Raises:
        ConfigError: the threshold is outside [0, 1] (named `evaluation.miou_threshold`).
    """
    properties = dict(exec_properties)
    threshold = properties.pop(MIOU_THRESHOLD_KEY, None)
    if threshold is None:
        return properties
    threshold = build(EvaluationConfig, {"miou_threshold": threshold}, prefix="evaluation.").miou_threshold
    eval_config = proto_utils.json_to_proto(properties[standard_component_specs.EVAL_CONFIG_KEY], tfma.EvalConfig())
    properties[standard_component_specs.EVAL_CONFIG_KEY] = proto_utils.proto_to_json(
        set_miou_threshold(eval_config, threshold))
    return properties


class Executor(evaluator_executor.Executor):
    """TFX's Evaluator executor, after `apply_miou_threshold`."""

    def Do(self, input_dict, output_dict, exec_properties):  # pylint: disable=invalid-name  # TFX's name
        super().Do(input_dict, output_dict, apply_miou_threshold(exec_properties))


class ThresholdedEvaluatorSpec(standard_component_specs.EvaluatorSpec):
    """TFX's `EvaluatorSpec` and the mIoU threshold."""

    PARAMETERS = {**standard_component_specs.EvaluatorSpec.PARAMETERS,
                  MIOU_THRESHOLD_KEY: ExecutionParameter(type=float, optional=True)}


class ThresholdedEvaluator(base_beam_component.BaseBeamComponent):
    """The Evaluator with a `miou_threshold` parameter (a float or a float `RuntimeParameter`). Outputs
    `evaluation` and `blessing`, as TFX's Evaluator."""

    SPEC_CLASS = ThresholdedEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, *, examples: channel.BaseChannel, model: channel.BaseChannel,
                 baseline_model: channel.BaseChannel, schema: channel.BaseChannel, example_splits: Sequence[str],
                 eval_config: tfma.EvalConfig, miou_threshold: Any = None):
        """Builds the component.

        Args:
            examples, model, baseline_model, schema: the input channels, as TFX's Evaluator takes them.
            example_splits: the splits evaluated.
            eval_config: `build_eval_config(...)`'s (an mIoU value threshold to set).
            miou_threshold: float or a float `RuntimeParameter`; None keeps `eval_config`'s.
        """
        # A ValueError now, rather than in the executor, for an eval config without an mIoU threshold.
        set_miou_threshold(tfma.EvalConfig.FromString(eval_config.SerializeToString()), 0.0)
        spec = ThresholdedEvaluatorSpec(
            examples=examples, model=model, baseline_model=baseline_model, schema=schema,
            feature_slicing_spec=None, fairness_indicator_thresholds=json_utils.dumps(None),
            example_splits=json_utils.dumps(list(example_splits)), eval_config=eval_config,
            module_file=None, module_path=None, miou_threshold=miou_threshold,
            evaluation=channel.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=channel.Channel(type=standard_artifacts.ModelBlessing))
        super().__init__(spec=spec)
