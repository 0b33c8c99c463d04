"""`ThresholdedEvaluator`: the run's mIoU threshold replaces the eval config's blessing bound."""

from __future__ import annotations

import pytest
import tensorflow_model_analysis as tfma
from tfx.utils import proto_utils

from components.core.hyperparams import ConfigError
from components.evaluator.component import apply_miou_threshold
from components.evaluator.eval_config import build_eval_config, set_miou_threshold


def _bounds(eval_config_json: str) -> list[float]:
    eval_config = proto_utils.json_to_proto(eval_config_json, tfma.EvalConfig())
    return [metric.threshold.value_threshold.lower_bound.value for spec in eval_config.metrics_specs
            for metric in spec.metrics if metric.threshold.HasField("value_threshold")]


def test_the_threshold_replaces_the_blessing_bound_and_nothing_else():
    compiled = build_eval_config("pascal_voc", miou_threshold=0.3, miou_max_drop=0.02)
    properties = apply_miou_threshold({"eval_config": proto_utils.proto_to_json(compiled), "miou_threshold": 0.65})
    assert set(properties) == {"eval_config"}
    assert _bounds(properties["eval_config"]) == [pytest.approx(0.65)]
    expected = build_eval_config("pascal_voc", miou_threshold=0.65, miou_max_drop=0.02)
    assert proto_utils.json_to_proto(properties["eval_config"], tfma.EvalConfig()) == expected


def test_an_out_of_range_threshold_fails_naming_the_key():
    compiled = proto_utils.proto_to_json(build_eval_config("pascal_voc", 0.3, 0.01))
    with pytest.raises(ConfigError, match=r"'evaluation.miou_threshold' must be in \[0, 1\]"):
        apply_miou_threshold({"eval_config": compiled, "miou_threshold": 1.5})


def test_an_eval_config_without_an_miou_threshold_is_refused():
    with pytest.raises(ValueError, match="no SegmentationMetrics value threshold"):
        set_miou_threshold(tfma.EvalConfig(), 0.5)
