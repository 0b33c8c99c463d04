"""Compiles the same `create_pipeline()` graph to a Kubeflow Pipelines (v2) YAML spec, with runtime parameters.

Only paths, the container image, Beam arguments and the run values differ from the local run; metadata is
the cluster's. MLflow: `runtime.mlflow_tracking_uri` when set, else the in-cluster service of
`infra/k8s/mlflow` (`DEFAULT_TRACKING_URI`). The Beam stages run on `runtime.beam` (DirectRunner in
each pod by default).

Runtime parameters (`RUNTIME_PARAMETERS`, the spec's root inputs, each with the config's value, or
`--data-dir`, as its default): `data_root` (str), `training_epochs` (int), `learning_rate` (float),
`miou_threshold` (float). They reach the components as top-level component parameters
(`pipeline.RunParameters`). TFX 1.16's `KubeflowV2DagRunner` declares them as root inputs without their
defaults in the `.yaml` it writes (a default lives in a PipelineJob's `runtimeConfig`, which the bare
spec that open-source KFP accepts does not carry), so `compile_pipeline` writes each default into the
root input's `defaultValue` (with `isOptional`), as the kfp SDK's own compiler does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml
from tfx import v1 as tfx

from components import beam_options
from components.core.config import PipelineConfig
from pipeline.pipeline import RunParameters, create_pipeline

DEFAULT_TRACKING_URI = "http://mlflow.mlflow.svc.cluster.local:5000"
"""The MLflow Service of `infra/k8s/mlflow` (name `mlflow`, namespace `mlflow`, port 5000)."""

DEFAULT_IMAGE = "segpipe:0.1.0"
"""The pipeline image as `infra/docker/pipeline.Dockerfile` builds it and `infra/k8s` names it (before a
registry prefix is set with kustomize's `images`)."""

RUNTIME_PARAMETERS = {"data_root": str, "training_epochs": int, "learning_rate": float, "miou_threshold": float}
"""Name and type of each runtime parameter of a compiled pipeline (the fields of `RunParameters`)."""

_KFP_PARAMETER_TYPES = {str: "STRING", int: "NUMBER_INTEGER", float: "NUMBER_DOUBLE"}


def runtime_parameters(config: PipelineConfig, data_dir: str) -> RunParameters:
    """A `RunParameters` of `RuntimeParameter`s whose defaults are the config's values and `data_dir`."""
    defaults = RunParameters.from_config(config, data_dir)
    return RunParameters(**{
        name: tfx.dsl.experimental.RuntimeParameter(name=name, ptype=ptype, default=ptype(getattr(defaults, name)))
        for name, ptype in RUNTIME_PARAMETERS.items()})


def compile_pipeline(config: PipelineConfig, output_file: str, data_dir: str, pipeline_root: str,
                     image: str) -> Path:
    """Writes the Kubeflow pipeline spec for `config` to `output_file` (.yaml) and returns its path.

    Raises:
        ValueError: `output_file` is not a .yaml file, or `data_dir` is empty.
    """
    output = Path(output_file)
    if output.suffix not in (".yaml", ".yml"):
        raise ValueError(f"{output}: the Kubeflow pipeline spec must be written as .yaml")
    if not data_dir:
        raise ValueError("the data root's default is empty: give the dataset's URI as the cluster sees it")
    tracking_uri = config.runtime.mlflow_tracking_uri or DEFAULT_TRACKING_URI
    parameters = runtime_parameters(config, data_dir)
    pipeline = create_pipeline(
        config,
        data_dir=data_dir,
        pipeline_root=pipeline_root,
        serving_model_dir=f"{pipeline_root.rstrip('/')}/serving_model",
        tracking_uri=tracking_uri,
        beam_pipeline_args=beam_options.kubeflow_pipeline_args(config.runtime),
        parameters=parameters)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image,
                                                                        use_pipeline_spec_2_1=True),
        output_filename=output.name)
    spec = runner.run(pipeline, write_out=False)["pipelineSpec"]
    root_inputs = spec["root"]["inputDefinitions"]["parameters"]
    for field in dataclasses.fields(parameters):
        parameter = getattr(parameters, field.name)
        declared = root_inputs.get(parameter.name, {})
        if declared.get("parameterType") != _KFP_PARAMETER_TYPES[parameter.ptype]:
            raise RuntimeError(f"runtime parameter {parameter.name!r} compiled as {declared}, "
                               f"expected {_KFP_PARAMETER_TYPES[parameter.ptype]}")
        declared.update(defaultValue=parameter.default, isOptional=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    header = "".join(f"#   {name}: {RUNTIME_PARAMETERS[name].__name__} = {root_inputs[name]['defaultValue']!r}\n"
                     for name in RUNTIME_PARAMETERS)
    output.write_text(f"# segpipe pipeline '{config.runtime.pipeline_name}' compiled for Kubeflow Pipelines "
                      f"(image {image}).\n# Runtime parameters (name: type = default):\n{header}"
                      + yaml.safe_dump(spec, sort_keys=True), encoding="utf-8")
    return output
