"""The same pipeline compiles to a Kubeflow Pipelines v2 spec that kfp itself accepts."""

from __future__ import annotations

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.kubeflow_runner import compile_pipeline


def test_compiles_every_component_into_a_spec_kfp_loads(tmp_path):
    from kfp import components as kfp_components

    config = load_config(DEFAULT_CONFIG, ["runtime.mlflow_tracking_uri=http://mlflow.example:5000"])
    spec_path = compile_pipeline(config, str(tmp_path / "segpipe.yaml"), data_dir="gs://bucket/voc",
                                 pipeline_root="gs://bucket/root", image="registry.example/segpipe:1")
    spec = yaml.safe_load(spec_path.read_text())
    tasks = set(spec["root"]["dag"]["tasks"])
    assert {"SegmentationExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Transform",
            "Trainer", "TFLiteExport", "latest_blessed_model_resolver-model-resolver", "Evaluator",
            "EvaluationReport", "Pusher", "MlflowTracker"} <= tasks
    images = {executor["container"]["image"] for executor in spec["deploymentSpec"]["executors"].values()
              if "container" in executor}
    assert images == {"registry.example/segpipe:1"}
    kfp_components.load_component_from_file(str(spec_path))


def test_refuses_a_json_output(tmp_path):
    with pytest.raises(ValueError, match="must be written as .yaml"):
        compile_pipeline(load_config(DEFAULT_CONFIG), str(tmp_path / "segpipe.json"), data_dir="gs://b/d",
                         pipeline_root="gs://b/r", image="segpipe:1")
