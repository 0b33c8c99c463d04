"""Runs the pipeline locally: LocalDagRunner, Beam's DirectRunner, SQLite metadata and MLflow store.

Everything a run writes lands under one output folder:
    <output>/data/            synthetic dataset (when the config names no data_dir)
    <output>/tfx/             TFX pipeline root (every component's artifacts)
    <output>/metadata.sqlite  ML Metadata
    <output>/serving_model/   versioned SavedModels pushed by the Pusher
    <output>/mlflow.db, <output>/mlflow-artifacts/   the default MLflow store
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient
from tfx import v1 as tfx

from components.core import sample_data
from components.example_gen.ingest import local_beam_args
from components.tracking.mlflow_logging import local_tracking_uri
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """What a local run produced, as printed at its end."""

    output_dir: str
    data_dir: str
    pushed_model: str
    blessed: bool
    metrics: dict
    tracking_uri: str
    experiment: str
    mlflow_run_id: str
    registered_version: str

    def describe(self) -> str:
        """Human-readable lines: where the model is, the figures, and the MLflow run to open."""
        lines = [f"Output folder:   {self.output_dir}",
                 f"Data:            {self.data_dir}",
                 f"Blessed:         {'yes' if self.blessed else 'no (not pushed)'}",
                 f"Pushed model:    {self.pushed_model or '-'}"]
        splits = sorted({name.split("/")[1] for name in self.metrics if name.startswith("data/") and name.count("/") == 2})
        ingested = ", ".join(f"{split} {self.metrics[f'data/{split}/written']:.0f} written "
                             f"({self.metrics[f'data/{split}/quarantined']:.0f} quarantined)" for split in splits)
        lines.append(f"Ingested:        {ingested}; validation anomalies: {self.metrics.get('data/anomalies', 0):.0f}")
        overall = {name: value for name, value in sorted(self.metrics.items()) if "/" not in name}
        lines += [f"Evaluation {name}: {value:.4f}" for name, value in overall.items()]
        lines.append(f"MLflow run:      {self.mlflow_run_id} (experiment '{self.experiment}')")
        if self.registered_version:
            lines.append(f"Registered model '{self.experiment}' version {self.registered_version}")
        if self.tracking_uri.startswith("sqlite:"):
            lines.append(f"Open it with:    mlflow ui --backend-store-uri {self.tracking_uri}")
        else:
            lines.append(f"Open it at:      {self.tracking_uri}")
        return "\n".join(lines)


# Without one of Beam's dependency flags, every TFX Beam executor builds and stages a ~50 MB source
# package of TFX (2-3 s each, left in the temp folder) for remote workers. DirectRunner's workers run
# in this environment and import the installed packages, so the local run names this environment's
# own interpreter image, which DirectRunner ignores, and skips that build.
LOCAL_WORKER_ENVIRONMENT_FLAG = "--sdk_container_image=local-python-environment"


# Components whose DirectRunner mode differs from the pipeline's, measured on 2 cores:
# - the Evaluator runs in-memory: TFMA on multi-processing DirectRunner starts workers that each load
#   the model again, while in-memory inference already uses every core through TensorFlow
#   (benchmarks/bench_eval.py: 64 examples 5.4 s in-memory vs 12.2 s multi-processing, 256: 8.0 vs 14.0 s;
#   1449: 16.5 vs 23.1 s);
# - the ExampleGen runs multi-threaded (ingest.local_beam_args, also `segpipe ingest`'s default): image
#   decoding and zlib release the GIL, and no worker process has to start and import TensorFlow
#   (benchmarks/bench_ingest.py, 4000 VOC-size pairs: 9.2 s multi-threaded vs 16.4 s multi-processing;
#   fixed cost 1.5 s vs 9.2 s).
EVALUATOR_BEAM_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")


def component_beam_pipeline_args(config: PipelineConfig) -> dict[str, tuple[str, ...]]:
    """Per-component Beam arguments that override the pipeline-wide ones in local runs."""
    return {"Evaluator": EVALUATOR_BEAM_ARGS,
            "SegmentationExampleGen": tuple(local_beam_args(config.runtime.beam_workers))}


def beam_pipeline_args(config: PipelineConfig) -> list[str]:
    """DirectRunner arguments: the configured running mode, one worker per core by default."""
    workers = 1 if config.runtime.beam_mode == "in_memory" else config.runtime.beam_workers or os.cpu_count() or 1
    return [f"--direct_running_mode={config.runtime.beam_mode}", f"--direct_num_workers={workers}",
            LOCAL_WORKER_ENVIRONMENT_FLAG]


def run_local(config: PipelineConfig, output_dir: str | os.PathLike[str], data_dir: str = "") -> RunSummary:
    """Runs the whole pipeline with LocalDagRunner and returns what it produced.

    Args:
        config: the experiment.
        output_dir: the folder everything is written to (created when missing).
        data_dir: the dataset; overrides `config.data.data_dir`. When both are empty a synthetic
            dataset of `config.data.format` is generated under `<output_dir>/data`.
    """
    output = Path(output_dir).resolve()
    output.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or config.data.data_dir or str(generate_synthetic_data(config, output / "data"))
    tracking_uri = config.runtime.mlflow_tracking_uri or local_tracking_uri(output)
    artifact_location = (output / "mlflow-artifacts").as_uri() if tracking_uri.startswith("sqlite:") else ""
    pipeline = create_pipeline(
        config,
        data_dir=str(Path(data_dir).resolve()),
        pipeline_root=str(output / "tfx"),
        serving_model_dir=str(output / "serving_model"),
        tracking_uri=tracking_uri,
        artifact_location=artifact_location,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(output / "metadata.sqlite")),
        beam_pipeline_args=beam_pipeline_args(config),
        component_beam_pipeline_args=component_beam_pipeline_args(config))
    logger.info("Running pipeline '%s' on %s", config.runtime.pipeline_name, data_dir)
    tfx.orchestration.LocalDagRunner().run(pipeline)
    return summarize(output, str(data_dir), tracking_uri, config.runtime.mlflow_experiment or config.runtime.pipeline_name)


def generate_synthetic_data(config: PipelineConfig, target: Path) -> Path:
    """Writes the configured synthetic dataset under `target` and returns its root."""
    summary = sample_data.write_dataset(config.data.format, target, num_images=config.data.synthetic_images,
                                        size=config.data.synthetic_size, seed=config.data.seed)
    logger.info("Generated a synthetic %s dataset in %s", config.data.format, target)
    return Path(summary["root"])


def summarize(output: Path, data_dir: str, tracking_uri: str, experiment: str) -> RunSummary:
    """Reads the newest MLflow run of `experiment`: what the tracker logged at the end of the run."""
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=1) \
        if found else []
    if not runs:
        raise RuntimeError(f"the pipeline finished but logged no MLflow run to {tracking_uri} ({experiment})")
    run = runs[0]
    versions = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    return RunSummary(
        output_dir=str(output),
        data_dir=data_dir,
        pushed_model=run.data.tags.get("segpipe.pushed_destination", ""),
        blessed=run.data.tags.get("segpipe.blessed") == "true",
        metrics=dict(run.data.metrics),
        tracking_uri=tracking_uri,
        experiment=experiment,
        mlflow_run_id=run.info.run_id,
        registered_version=versions[0].version if versions else "")
