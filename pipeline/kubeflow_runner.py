"""Compiles the same `create_pipeline()` graph to a Kubeflow Pipelines (v2) YAML spec.

Only paths, the container image and Beam arguments differ from the local run; metadata is the
cluster's. MLflow: `runtime.mlflow_tracking_uri` when set, else an in-cluster `mlflow` service.
"""

from __future__ import annotations

from pathlib import Path

from tfx import v1 as tfx

from components import beam_options
from components.core.config import PipelineConfig
from pipeline.pipeline import create_pipeline


def compile_pipeline(config: PipelineConfig, output_file: str, data_dir: str, pipeline_root: str,
                     image: str) -> Path:
    """Writes the Kubeflow pipeline spec for `config` to `output_file` (.yaml) and returns its path.

    Raises:
        ValueError: `output_file` is not a .yaml file.
    """
    output = Path(output_file)
    if output.suffix not in (".yaml", ".yml"):
        raise ValueError(f"{output}: the Kubeflow pipeline spec must be written as .yaml")
    tracking_uri = config.runtime.mlflow_tracking_uri or "http://mlflow.mlflow.svc.cluster.local:5000"
    pipeline = create_pipeline(
        config,
        data_dir=data_dir,
        pipeline_root=pipeline_root,
        serving_model_dir=f"{pipeline_root.rstrip('/')}/serving_model",
        tracking_uri=tracking_uri,
        beam_pipeline_args=beam_options.kubeflow_pipeline_args())
    output.parent.mkdir(parents=True, exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image,
                                                                        use_pipeline_spec_2_1=True),
        output_filename=str(output))
    runner.run(pipeline)
    return output
