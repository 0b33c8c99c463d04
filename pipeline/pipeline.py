"""`create_pipeline()`: the only place where segpipe's TFX components are wired together.

ExampleGen (VOC / Cityscapes layout) -> StatisticsGen -> ImportSchemaGen (schemas/raw_schema.pbtxt)
-> ExampleValidator -> Transform (analyze the train split; graph applied in the Trainer) -> Trainer
-> TFLiteExport (float32, dynamic-range and int8 TFLite models, each scored on the eval split)
-> latest-blessed-model resolver -> Evaluator (TFMA segmentation metrics per slice, blessing on mIoU)
-> EvaluationReport (tables, confusion matrix, overlays) -> SegmentationPusher (SavedModel, accepted TFLite
models and a manifest, to a new versioned folder) -> MlflowTracker.

Runners (local, Kubeflow) only choose paths, the metadata connection, Beam arguments and the runner,
and what the values a run may change (`RunParameters`: data root, training epochs, learning rate, mIoU
threshold) are: the config's own values locally, runtime parameters in a compiled Kubeflow pipeline.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from tfx import v1 as tfx
from tfx.dsl.components.base.executor_spec import BeamExecutorSpec
from tfx.proto import transform_pb2

from components import dask_cluster
from components.core.hyperparams import ConfigError

from components.core.datasets import label_map_name
from components.core.label_maps import load_label_map, schemas_dir
from components.evaluator.component import ThresholdedEvaluator
from components.evaluator.eval_config import build_eval_config
from components.evaluator.report import EvaluationReport
from components.example_gen.component import SegmentationExampleGen
from components.pusher.component import SegmentationPusher
from components.tflite_export.component import TFLiteExport
from components.tracking.component import MlflowTracker
from components.core.config import PipelineConfig
from components.trainer.component import SegmentationTrainer
from components.trainer.run import trainer_custom_config
from components.transform.preprocessing import transform_custom_config

TRACKER_ID = "MlflowTracker"
"""Component id of the MLflow tracker, the pipeline's last step."""

RAW_SCHEMA_FILE = "raw_schema.pbtxt"

DASK_CAPABLE_COMPONENTS = ("SegmentationExampleGen",)
"""The Beam components that can run on Beam's Dask runner. The ExampleGen's graph is only `Create` and a
`ParDo` that writes its own shards (`components/example_gen/ingest.py`). TFX's StatisticsGen, Transform
and Evaluator read their examples with Beam's file IO (`beam.io.Read`, through TFXIO), which the Dask
runner of Beam 2.74 does not translate, and write with Beam's file sinks, whose outputs it drops:
StatisticsGen on it fails with `AttributeError: 'NoneType' object has no attribute '__dask_keys__'`
after starting the cluster, and a sink that does run finalises empty files."""


def raw_schema_path() -> Path:
    """The checked-in schema of ingested examples."""
    return schemas_dir() / RAW_SCHEMA_FILE


@dataclasses.dataclass(frozen=True)
class RunParameters:
    """The values a run may change without building the pipeline again. Each is a plain value (local
    runs: the config's) or a `tfx.dsl.experimental.RuntimeParameter` of the same type (int, float or str;
    a compiled Kubeflow pipeline's inputs). Each is wired into a top-level component parameter, the only
    place a runtime parameter reaches from the pipeline's root: the ExampleGen's `input_base`, the
    Trainer's `training_epochs` and `learning_rate`, the Evaluator's `miou_threshold`; the MlflowTracker
    logs the values used.

    Attributes:
        data_root: the dataset root (`data.data_dir`), str.
        training_epochs: `training.epochs` (the Trainer trains epochs x `training.steps_per_epoch` steps), int.
        learning_rate: `training.optimizer.learning_rate`, float.
        miou_threshold: `evaluation.miou_threshold`, the mIoU a model needs to be blessed, float.
    """

    data_root: Any
    training_epochs: Any
    learning_rate: Any
    miou_threshold: Any

    @classmethod
    def from_config(cls, config: PipelineConfig, data_dir: str) -> "RunParameters":
        """The config's values, and `data_dir` as the data root."""
        return cls(data_root=data_dir, training_epochs=config.training.epochs,
                   learning_rate=config.training.optimizer.learning_rate,
                   miou_threshold=config.evaluation.miou_threshold)


def create_pipeline(
    config: PipelineConfig,
    data_dir: str,
    pipeline_root: str,
    serving_model_dir: str,
    tracking_uri: str,
    artifact_location: str = "",
    metadata_connection_config=None,
    beam_pipeline_args: Sequence[str] = (),
    component_beam_pipeline_args: Mapping[str, Sequence[str]] | None = None,
    parameters: RunParameters | None = None,
    mlflow_run_id: str = "",
) -> tfx.dsl.Pipeline:
    """Builds the segmentation pipeline.

    Args:
        config: the experiment.
        data_dir: root of the dataset in `config.data.format` layout.
        pipeline_root: where TFX writes artifacts.
        serving_model_dir: base directory the pusher writes versioned model folders to.
        tracking_uri: MLflow tracking URI.
        artifact_location: MLflow artifact root for a newly created experiment ("" = store default).
        metadata_connection_config: ML Metadata connection (None for the orchestrator's default).
        beam_pipeline_args: arguments of the Beam pipelines of Beam-based components.
        component_beam_pipeline_args: per component id, Beam arguments that follow (and so override)
            the pipeline-wide ones.
        parameters: the run's values (runtime parameters when compiling for Kubeflow); None: the
            config's, with `data_dir` as the data root.
        mlflow_run_id: the MLflow run the runner started for this pipeline run, which the tracker logs
            into ("" = the tracker creates a run itself).

    Returns:
        The `tfx.dsl.Pipeline`.
    """
    train_split, eval_split = config.data.splits
    label_map = load_label_map(label_map_name(config.data.format))
    parameters = parameters or RunParameters.from_config(config, data_dir)

    example_gen = SegmentationExampleGen(
        input_base=parameters.data_root, dataset_format=config.data.format, splits=list(config.data.splits),
        strict=config.data.strict, require_examples=True)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=str(raw_schema_path()))
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn="components.transform.preprocessing.preprocessing_fn",
        splits_config=transform_pb2.SplitsConfig(analyze=[train_split]),
        materialize=False,
        custom_config=transform_custom_config(config, label_map.num_classes))
    trainer = SegmentationTrainer(
        run_fn="components.trainer.run.run_fn",
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[train_split], num_steps=config.training.total_steps),
        eval_args=tfx.proto.EvalArgs(splits=[eval_split], num_steps=config.training.eval_steps),
        custom_config=trainer_custom_config(config, label_map.name),
        training_epochs=parameters.training_epochs,
        learning_rate=parameters.learning_rate,
    ).with_id("Trainer")
    tflite_export = TFLiteExport(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        label_map=label_map.name,
        train_split=train_split,
        eval_split=eval_split,
        resize=config.preprocessing.resize,
        export_config=json.dumps(config.export.to_dict(), sort_keys=True))
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = ThresholdedEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        schema=schema_gen.outputs["schema"],
        example_splits=[eval_split],
        eval_config=build_eval_config(label_map.name, config.evaluation.miou_threshold,
                                      config.evaluation.miou_max_drop),
        miou_threshold=parameters.miou_threshold,
    ).with_id("Evaluator")
    report = EvaluationReport(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        evaluation=evaluator.outputs["evaluation"],
        label_map=label_map.name,
        eval_split=eval_split)
    pusher = SegmentationPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        tflite_models=tflite_export.outputs["tflite_models"],
        evaluation=evaluator.outputs["evaluation"],
        base_directory=serving_model_dir,
        run_context=json.dumps({"pipeline_name": config.runtime.pipeline_name,
                                "mlflow": {"tracking_uri": tracking_uri, "experiment": config.runtime.experiment,
                                           **({"run_id": mlflow_run_id} if mlflow_run_id else {})}},
                               sort_keys=True)).with_id("Pusher")
    tracker = MlflowTracker(
        examples=example_gen.outputs["examples"],
        anomalies=example_validator.outputs["anomalies"],
        model=trainer.outputs["model"],
        model_run=trainer.outputs["model_run"],
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        pushed_model=pusher.outputs["pushed_model"],
        report=report.outputs["report"],
        tflite_models=tflite_export.outputs["tflite_models"],
        tracking_uri=tracking_uri,
        experiment=config.runtime.experiment,
        registered_model=config.runtime.registered_model,
        run_params=json.dumps(config.flat()),
        eval_split=eval_split,
        data_root=parameters.data_root,
        training_epochs=parameters.training_epochs,
        learning_rate=parameters.learning_rate,
        miou_threshold=parameters.miou_threshold,
        artifact_location=artifact_location,
        mlflow_run_id=mlflow_run_id).with_id(TRACKER_ID)

    components = [example_gen, statistics_gen, schema_gen, example_validator, transform, trainer, tflite_export,
                  model_resolver, evaluator, report, pusher, tracker]
    check_beam_runners(components, beam_pipeline_args, component_beam_pipeline_args or {})
    for component in components:
        if component.id in (component_beam_pipeline_args or {}):
            component.with_beam_pipeline_args(list(component_beam_pipeline_args[component.id]))
    return tfx.dsl.Pipeline(
        pipeline_name=config.runtime.pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=config.runtime.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args))


def check_beam_runners(components: Sequence, beam_pipeline_args: Sequence[str],
                       component_beam_pipeline_args: Mapping[str, Sequence[str]]) -> None:
    """Refuses, before anything runs, a Beam runner that a Beam component cannot run on.

    A component's runner is the last `--runner` of the pipeline-wide arguments followed by its own.

    Raises:
        ConfigError: Beam arguments are given for an id that is no Beam component of the pipeline, or a
            Beam component other than :data:`DASK_CAPABLE_COMPONENTS` would run on Beam's Dask runner
            (one line naming the component and the runner).
    """
    beam_ids = [component.id for component in components
                if isinstance(getattr(component, "executor_spec", None), BeamExecutorSpec)]
    unknown = sorted(set(component_beam_pipeline_args) - set(beam_ids))
    if unknown:
        raise ConfigError(f"Beam arguments for {', '.join(unknown)}: no Beam component of the pipeline has that id "
                          f"(Beam components: {', '.join(beam_ids)})")
    for component in components:
        if not isinstance(getattr(component, "executor_spec", None), BeamExecutorSpec):
            continue
        args = list(beam_pipeline_args) + list(component_beam_pipeline_args.get(component.id, ()))
        if dask_cluster.is_dask_runner(args) and component.id not in DASK_CAPABLE_COMPONENTS:
            raise ConfigError(
                f"{component.id} cannot run on Beam runner {dask_cluster.runner_name(args)}: it reads with Beam's "
                "file IO (beam.io.Read), which that runner does not translate, and would fail or write empty "
                f"artifacts; give the Dask runner to {', '.join(DASK_CAPABLE_COMPONENTS)} alone "
                f"(--beam-arg={DASK_CAPABLE_COMPONENTS[0]}:--runner={dask_cluster.DASK_RUNNER})")
