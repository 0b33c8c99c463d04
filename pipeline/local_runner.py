"""Runs the pipeline locally: LocalDagRunner, Beam's DirectRunner, SQLite metadata and MLflow store.

Everything a run writes lands under one output folder:
    <output>/data/<settings>/ synthetic dataset (when the config names no data_dir), one folder per settings
    <output>/tfx/             TFX pipeline root (every component's artifacts)
    <output>/metadata.sqlite  ML Metadata
    <output>/serving_model/   versioned pushed folders: SavedModel, TFLite models, manifest.json
    <output>/mlflow.db, <output>/mlflow-artifacts/   the default MLflow store
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import psutil
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from mlflow.tracking import MlflowClient
from tfx import v1 as tfx
from tfx.orchestration import pipeline as tfx_pipeline

from components import beam_options
from components.core import datasets, sample_data
from components.core.config import PipelineConfig
from components.core.datasets.fingerprint import fingerprint_dataset
from components.core.hyperparams import ConfigError
from components.tracking.component import RUN_ID_OUTPUT, RUN_VALUE_PARAMS
from components.tracking.mlflow_logging import (
    PipelineRunStart,
    dataset_inputs,
    end_pipeline_run,
    mlflow_client_settings,
    start_pipeline_run,
)
from components.tracking.targets import check_reachable, local_artifact_location, resolve_tracking_target
from components.trainer import live_metrics
from pipeline.pipeline import TRACKER_ID, create_pipeline

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
    registered_model: str
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
        overall = {name.removeprefix("eval/"): value for name, value in sorted(self.metrics.items())
                   if name.startswith("eval/") and name.count("/") == 1}
        lines += [f"Evaluation {name}: {value:.4f}" for name, value in overall.items()]
        lines.append(f"MLflow run:      {self.mlflow_run_id} (experiment '{self.experiment}')")
        if self.registered_version:
            lines.append(f"Registered model '{self.registered_model}' version {self.registered_version}")
        if self.tracking_uri.startswith("sqlite:"):
            lines.append(f"Open it with:    segpipe ui --output {self.output_dir}")
        else:
            lines.append(f"Open it at:      {self.tracking_uri}")
        return "\n".join(lines)


def split_beam_args(beam_args: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """`--OPTION=VALUE` arguments for every Beam component, and `COMPONENT:--OPTION=VALUE` ones by component.

    Raises:
        ConfigError: an argument is neither (one line naming it).
    """
    pipeline_wide, by_component = [], {}
    for arg in beam_args:
        component, separator, option = arg.partition(":")
        if arg.startswith("--"):
            pipeline_wide.append(arg)
        elif separator and component and option.startswith("--"):
            by_component.setdefault(component, []).append(option)
        else:
            raise ConfigError(f"--beam-arg {arg!r}: expected --OPTION=VALUE or COMPONENT:--OPTION=VALUE")
    return pipeline_wide, by_component


@dataclass(frozen=True)
class PartialRunSummary:
    """What a run stopped after one step (`until`) did, step by step."""

    output_dir: str
    data_dir: str
    until: str
    states: dict

    def describe(self) -> str:
        """Human-readable lines: each step run and what it did, and where the outputs are."""
        lines = [f"Output folder:   {self.output_dir}", f"Data:            {self.data_dir}",
                 f"Ran up to:       {self.until}"]
        lines += [f"  {step:<30} {state}" for step, state in self.states.items() if state != "not run"]
        return "\n".join(lines)


def run_local(config: PipelineConfig, output_dir: str | os.PathLike[str], data_dir: str = "",
              beam_args: Sequence[str] = (), until: str = "", source: str = "segpipe run") -> RunSummary | PartialRunSummary:
    """Runs the pipeline (or, with `until`, part of it) with LocalDagRunner and returns what it produced.

    Ctrl-C or SIGTERM (in the main thread) stops the run as a `KeyboardInterrupt` (:class:`RunInterrupted` for
    SIGTERM): the interrupted ML Metadata execution is marked CANCELED and the processes the run started are
    stopped before it propagates. Executions an earlier, killed run left RUNNING are marked CANCELED first.

    One MLflow run spans a whole pipeline run: started before the first step (in the configured store, else
    the one `MLFLOW_TRACKING_URI` names, else a SQLite store in the output folder), ended after the last
    (FAILED when a step fails or the run is interrupted). A partial run (`until`) is not tracked.

    Args:
        config: the experiment.
        output_dir: the folder everything is written to (created when missing).
        data_dir: the dataset; overrides `config.data.data_dir`. When both are empty a synthetic
            dataset of `config.data.format` is generated under `<output_dir>/data/<settings>`, once
            (:func:`generate_synthetic_data`).
        beam_args: Beam options after the local defaults: `--OPTION=VALUE` for every Beam component,
            `COMPONENT:--OPTION=VALUE` for one (:func:`split_beam_args`).
        until: a step id: run only that step and the steps it depends on (TFX's partial run), and return a
            :class:`PartialRunSummary`; "" runs the whole pipeline.
        source: the command that started the run, recorded as the MLflow run's source.

    Raises:
        IngestionError: before anything runs or is written, if the dataset folder is not in its layout,
            or its training or evaluation split is missing or lists nothing.
        ConfigError: before anything runs or is written, if the configured MLflow server is unreachable, or
            a Beam argument is malformed, names no Beam component, or gives a component a runner it
            cannot run on (:func:`pipeline.pipeline.check_beam_runners`).
        TrackingError: before anything runs, if the MLflow server fails to create the run.
        PipelineRunError: if a step fails (the ExampleGen, for instance, when a split is left without a
            usable example): a summary of what finished and what did not, the step's error as cause.
    """
    pipeline_beam_args, component_beam_args = split_beam_args(beam_args)
    data_dir = data_dir or config.data.data_dir
    if data_dir:  # before anything is written: the folder, and a listed training and evaluation split
        datasets.check_run_splits(config.data.format, str(data_dir), *config.data.splits)
    output = Path(output_dir).resolve()
    target = resolve_tracking_target(config.runtime.mlflow_tracking_uri, output)
    check_reachable(target.uri, origin=target.origin)
    output.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or str(generate_synthetic_data(config, output / "data"))
    artifact_location = "" if target.is_server else local_artifact_location(output)
    with mlflow_client_settings():
        run_id = ""
        if not until:
            run_id = start_pipeline_run(target, pipeline_run_start(config, str(data_dir), source), artifact_location)
            logger.info("MLflow run %s started at %s", run_id, target.uri)
        pipeline = create_pipeline(
            config,
            data_dir=str(Path(data_dir).resolve()),
            pipeline_root=str(output / "tfx"),
            serving_model_dir=str(output / "serving_model"),
            tracking_uri=target.uri,
            artifact_location=artifact_location,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                str(output / "metadata.sqlite")),
            beam_pipeline_args=beam_options.local_pipeline_args(config.runtime) + pipeline_beam_args,
            component_beam_pipeline_args=merged_component_args(beam_options.local_component_args(config.runtime),
                                                               component_beam_args),
            mlflow_run_id=run_id)
        step_ids = [component.id for component in pipeline.components]
        if until and until not in step_ids:
            raise ConfigError(f"--until {until!r}: no such step (steps: {', '.join(step_ids)})")
        run_options = tfx_pipeline.RunOptions(to_nodes=[until]) if until else None
        logger.info("Running pipeline '%s' on %s%s", config.runtime.pipeline_name, data_dir,
                    f", up to {until} (not tracked in MLflow)" if until else "")
        beam_options.bind_local_beam_servers_to_loopback()
        store = metadata_store.MetadataStore(pipeline.metadata_connection_config)
        for component, execution_id in cancel_interrupted_executions(store, pipeline):
            logger.warning("%s: ML Metadata execution %d of an earlier run was left RUNNING (its process was "
                           "killed): marked CANCELED", component, execution_id)
        newest = store.get_executions(list_options=metadata_store.ListOptions(
            limit=1, order_by=metadata_store.OrderByField.ID, is_asc=False))
        last_execution_before = newest[0].id if newest else 0
        children_before = {child.pid for child in psutil.Process().children(recursive=True)}

        def end_tracked_run(succeeded: bool) -> None:
            if run_id:
                end_pipeline_run(target, run_id, succeeded=succeeded,
                                 tags=pipeline_run_tags(store, pipeline, last_execution_before))

        def clean_up_interrupted_run() -> None:
            interrupted_store = metadata_store.MetadataStore(pipeline.metadata_connection_config)
            for component, execution_id in cancel_interrupted_executions(interrupted_store, pipeline,
                                                                         after_execution=last_execution_before):
                logger.warning("%s: interrupted; ML Metadata execution %d marked CANCELED", component, execution_id)
            stop_new_children(children_before)
            end_tracked_run(succeeded=False)

        try:
            with _interrupt_on_sigterm(clean_up_interrupted_run), _CachedStepLogger.installed(), \
                    live_training_run(target.uri, run_id):
                tfx.orchestration.LocalDagRunner().run(pipeline, run_options=run_options)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into one
            clean_up_interrupted_run()
            raise
        except Exception as error:  # pylint: disable=broad-except  # summarised, the cause kept as __cause__
            stop_new_children(children_before)
            end_tracked_run(succeeded=False)
            raise PipelineRunError(pipeline, error, step_states(store, pipeline, last_execution_before),
                                   output) from error
        if until:
            return PartialRunSummary(str(output), str(data_dir), until,
                                     step_states(store, pipeline, last_execution_before))
        end_tracked_run(succeeded=True)
    return summarize(output, str(data_dir), target.uri, tracked_run_id(pipeline), config.runtime.registered_model)


def pipeline_run_start(config: PipelineConfig, data_dir: str, source: str) -> PipelineRunStart:
    """What the pipeline run's MLflow run holds from its start: the command, the code's version, the whole
    configuration, the TFX pipeline, the model's architecture and backbone, and the dataset's splits as
    dataset inputs with their fingerprint."""
    train_split, eval_split = config.data.splits
    fingerprint = fingerprint_dataset(config.data.format, data_dir, [train_split, eval_split])
    model = config.model
    backbone = getattr(model.selected, "backbone", None)
    return PipelineRunStart(
        experiment=config.runtime.experiment,
        run_name=f"{config.runtime.pipeline_name}-{time.strftime('%Y%m%d-%H%M%S')}",
        source=source,
        code_dir=str(Path(__file__).resolve().parents[1]),
        params={**config.flat(), RUN_VALUE_PARAMS[0]: str(Path(data_dir).resolve())},  # the tracker's names
        tags={"tfx.pipeline_name": config.runtime.pipeline_name, "segpipe.dataset": fingerprint.name,
              "segpipe.dataset_root": fingerprint.root, "segpipe.dataset_fingerprint": fingerprint.digest,
              **{f"segpipe.dataset.{split.name}.listed": str(split.listed) for split in fingerprint.splits},
              "segpipe.architecture": model.architecture,
              "segpipe.backbone": backbone.name if backbone is not None else "none"},
        datasets=dataset_inputs(fingerprint, train_split, eval_split))


@contextlib.contextmanager
def live_training_run(tracking_uri: str, run_id: str) -> Iterator[None]:
    """Within the block, the Trainer (run in this process by LocalDagRunner) logs its curves into `run_id`
    (nothing when `run_id` is "")."""
    if not run_id:
        yield
        return
    previous = {name: os.environ.get(name) for name in (live_metrics.RUN_ID_ENV, live_metrics.TRACKING_URI_ENV)}
    os.environ[live_metrics.RUN_ID_ENV], os.environ[live_metrics.TRACKING_URI_ENV] = run_id, tracking_uri
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pipeline_run_tags(store: metadata_store.MetadataStore, pipeline: tfx.dsl.Pipeline,
                      after_execution: int) -> dict[str, str]:
    """`tfx.pipeline_run_id`: the TFX run id (ML Metadata's pipeline_run context) of the executions of
    `pipeline` with ids above `after_execution` (no tag when none ran)."""
    executions = [execution for execution in store.get_executions() if execution.id > after_execution]
    if not executions:
        return {}
    contexts = store.get_contexts_by_execution(max(execution.id for execution in executions))
    run_type = store.get_context_type("pipeline_run")
    names = [context.name for context in contexts if context.type_id == run_type.id]
    return {"tfx.pipeline_run_id": names[0]} if names else {}


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM received during a local run: raised in the main thread like Ctrl-C's KeyboardInterrupt, so that
    Beam, the Dask cluster and the Trainer unwind the same way. `signal_number` says which signal."""

    def __init__(self, signal_number: int):
        super().__init__(f"interrupted by {signal.Signals(signal_number).name}")
        self.signal_number = signal_number


SIGTERM_GRACE_SECONDS = 20.0
"""How long a run may take to unwind after SIGTERM before it is ended at once (see :func:`_interrupt_on_sigterm`)."""


@contextlib.contextmanager
def _interrupt_on_sigterm(clean_up: Callable[[], None]) -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM raises :class:`RunInterrupted` there.

    The exception can be swallowed or delayed where the main thread waits inside Beam (seen with
    multi-processing DirectRunner workers running), so SIGTERM also arms a watchdog: if the process is still
    running :data:`SIGTERM_GRACE_SECONDS` later, `clean_up()` runs (marks the execution CANCELED, stops the
    run's processes) and the process exits with 143 at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def end_now(signal_number: int) -> None:
        logger.warning("Still running %.0f s after %s: stopping now", SIGTERM_GRACE_SECONDS,
                       signal.Signals(signal_number).name)
        with contextlib.suppress(Exception):
            clean_up()
        sys.stderr.write(f"segpipe: interrupted by {signal.Signals(signal_number).name}; run the same command "
                         "again to reuse the finished steps and resume training\n")
        sys.stderr.flush()
        os._exit(128 + signal_number)  # pylint: disable=protected-access

    def interrupt(signal_number, _frame):
        watchdog = threading.Timer(SIGTERM_GRACE_SECONDS, end_now, args=(signal_number,))
        watchdog.daemon = True
        watchdog.start()
        raise RunInterrupted(signal_number)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _CachedStepLogger(logging.Handler):
    """Says, as it happens, which steps TFX reuses from its cache. TFX's launcher logs only "A cached
    execution N is used." (absl, INFO, hidden in quiet runs) after LocalDagRunner's "Component X is running.";
    this handler pairs the two and logs one segpipe line per cached step."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.component = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Component %s is running." and record.args:
            self.component = str(record.args[0])
        elif record.msg == "A cached execution %d is used." and record.args:
            logger.info("%s: cached: outputs reused from an earlier run with the same inputs and settings "
                        "(ML Metadata execution %d)", self.component, record.args[0])

    @classmethod
    @contextlib.contextmanager
    def installed(cls) -> Iterator[None]:
        """Attached to the root logger (which TFX's absl records reach) while the block runs."""
        handler = cls()
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)


def cancel_interrupted_executions(store: metadata_store.MetadataStore, pipeline: tfx.dsl.Pipeline,
                                  after_execution: int = 0) -> list[tuple[str, int]]:
    """Marks CANCELED the executions of `pipeline`'s steps (with ids above `after_execution`) that ML Metadata
    still records as RUNNING or NEW: their process was killed, or interrupted, before TFX could record an end.

    Called before a local run (nothing else runs this pipeline on this metadata store then: a local run owns
    its output folder) and when a run is interrupted. Returns (step id, execution id) of each one marked.
    """
    marked = []
    for component in pipeline.components:
        node = store.get_context_by_type_and_name("node", f"{pipeline.pipeline_info.pipeline_name}.{component.id}")
        for execution in store.get_executions_by_context(node.id) if node else []:
            if execution.id > after_execution and execution.last_known_state in (
                    metadata_store_pb2.Execution.RUNNING, metadata_store_pb2.Execution.NEW):
                execution.last_known_state = metadata_store_pb2.Execution.CANCELED
                execution.custom_properties["segpipe_note"].string_value = (
                    "interrupted: marked CANCELED by segpipe (the run stopped before TFX recorded an end)")
                store.put_executions([execution])
                marked.append((component.id, execution.id))
    return marked


def stop_new_children(children_before: set[int], timeout: float = 5.0) -> None:
    """Terminates (then kills, after `timeout` seconds) the processes below this one that were not there
    before the run: Beam worker processes, a Dask cluster's, anything a step left behind."""
    new = [child for child in psutil.Process().children(recursive=True) if child.pid not in children_before]
    for child in new:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(new, timeout=timeout)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    if new:
        logger.info("Stopped %d process(es) the run had started", len(new))


def merged_component_args(defaults: Mapping[str, Sequence[str]],
                          given: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Per-component Beam arguments: the local defaults, then those given (which so override them)."""
    merged = {component: tuple(args) for component, args in defaults.items()}
    for component, args in given.items():
        merged[component] = merged.get(component, ()) + tuple(args)
    return merged


_STATE_WORDS = {
    metadata_store_pb2.Execution.COMPLETE: "finished",
    metadata_store_pb2.Execution.CACHED: "finished (cached)",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "interrupted",
    metadata_store_pb2.Execution.NEW: "interrupted",
    metadata_store_pb2.Execution.CANCELED: "canceled",
}


def step_states(store: metadata_store.MetadataStore, pipeline: tfx.dsl.Pipeline,
                after_execution: int) -> dict[str, str]:
    """What each step of `pipeline` did in the run whose executions have ids above `after_execution`:
    "finished", "finished (cached)", "failed", "interrupted", "canceled", or "not run", in pipeline order."""
    states = {}
    for component in pipeline.components:
        node = store.get_context_by_type_and_name("node", f"{pipeline.pipeline_info.pipeline_name}.{component.id}")
        executions = [execution for execution in (store.get_executions_by_context(node.id) if node else [])
                      if execution.id > after_execution]
        newest = max(executions, key=lambda execution: execution.id, default=None)
        states[component.id] = _STATE_WORDS.get(newest.last_known_state, "unknown") if newest else "not run"
    return states


class PipelineRunError(RuntimeError):
    """A step of a local run failed: the message is a short summary (the step, its error in one line,
    what finished and what did not, where the outputs are); the step's exception is `__cause__`.

    Attributes:
        cause: The exception the failing step raised.
        states: Step id -> what it did (:func:`step_states`).
    """

    def __init__(self, pipeline: tfx.dsl.Pipeline, cause: BaseException, states: dict[str, str], output: Path):
        self.cause = cause
        self.states = states
        failed = [step for step, state in states.items() if state == "failed"] or \
                 [step for step, state in states.items() if state == "interrupted"]
        reason = " ".join(str(cause).split()) or type(cause).__name__
        if len(reason) > 400:
            reason = reason[:400] + " ..."
        lines = [f"step {', '.join(failed) or '(unknown)'} of pipeline '{pipeline.pipeline_info.pipeline_name}' "
                 f"failed: {reason}"]
        for label, wanted in (("finished", ("finished", "finished (cached)")), ("failed", ("failed",)),
                              ("not finished", ("interrupted", "canceled", "unknown")), ("not run", ("not run",))):
            steps = [step + (" (cached)" if state == "finished (cached)" else "")
                     for step, state in states.items() if state in wanted]
            if steps:
                lines.append(f"  {label + ':':<13} {', '.join(steps)}")
        if TRACKER_ID in failed and states.get("Pusher", "").startswith("finished"):
            lines.append(f"  the model, its blessing and the push are in place; to log the run to MLflow again: "
                         f"segpipe track --output {output}")
        lines.append(f"  outputs so far: {output / 'tfx'}; run again with --verbose for the traceback")
        super().__init__("\n".join(lines))


def generate_synthetic_data(config: PipelineConfig, parent: Path) -> Path:
    """The configured synthetic dataset under `parent`, in a folder named by its settings; written only when
    that folder holds no complete one (so that a run again with the same settings finds the same files and
    TFX's cache hits). Returns its root."""
    summary, written = sample_data.write_dataset_once(
        config.data.format, parent, num_images=config.data.synthetic_images,
        image_size=config.data.synthetic_image_size, seed=config.data.seed)
    folder = parent / sample_data.dataset_folder_name(config.data.format, config.data.synthetic_images,
                                                      config.data.synthetic_image_size, config.data.seed)
    logger.info("%s the synthetic %s dataset in %s", "Generated" if written else "Reusing (same settings)",
                config.data.format, folder)
    return Path(summary["root"])


def tracked_run_id(pipeline: tfx.dsl.Pipeline) -> str:
    """The MLflow run id output by the newest MlflowTracker execution of `pipeline` in ML Metadata: the run
    this pipeline run logged (or, when TFX reused a cached tracker execution, the run that logged those results).

    Raises:
        RuntimeError: ML Metadata records no tracker execution with that output.
    """
    store = metadata_store.MetadataStore(pipeline.metadata_connection_config)
    node = store.get_context_by_type_and_name("node", f"{pipeline.pipeline_info.pipeline_name}.{TRACKER_ID}")
    executions = store.get_executions_by_context(node.id) if node else []
    newest = max(executions, key=lambda execution: execution.id, default=None)
    output_ids = [event.artifact_id for event in store.get_events_by_execution_ids([newest.id])
                  if event.type == metadata_store_pb2.Event.OUTPUT
                  and any(step.key == RUN_ID_OUTPUT for step in event.path.steps)] if newest else []
    if not output_ids:
        raise RuntimeError("the pipeline finished but ML Metadata records no MLflow run id from the MlflowTracker")
    (artifact,) = store.get_artifacts_by_id(output_ids[:1])
    with tf.io.gfile.GFile(artifact.uri, "rb") as value_file:
        return value_file.read().decode("utf-8")


def summarize(output: Path, data_dir: str, tracking_uri: str, run_id: str, registered_model: str) -> RunSummary:
    """Reads MLflow run `run_id`: what the tracker logged at the end of the pipeline run."""
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id).name
    versions = client.search_model_versions(f"run_id = '{run_id}' and name = '{registered_model}'")
    return RunSummary(
        output_dir=str(output),
        data_dir=data_dir,
        pushed_model=run.data.tags.get("segpipe.pushed_destination", ""),
        blessed=run.data.tags.get("segpipe.blessed") == "true",
        metrics=dict(run.data.metrics),
        tracking_uri=tracking_uri,
        experiment=experiment,
        mlflow_run_id=run_id,
        registered_model=registered_model,
        registered_version=versions[0].version if versions else "")


def relog_run(output_dir: str | os.PathLike[str], tracking_uri: str = "") -> tuple[str, str, str]:
    """Logs the newest tracked pipeline run of an output folder to MLflow again (`segpipe track`): the
    inputs and settings of its MlflowTracker step, read from the folder's ML Metadata, go through the
    tracker's code into a new MLflow run. Used when tracking failed (the server was away).

    Args:
        output_dir: the run's output folder (holding `metadata.sqlite`).
        tracking_uri: where to log; "" = where the run was configured to log.

    Returns:
        (MLflow run id, registered version or "", tracking URI).

    Raises:
        FileNotFoundError: no ML Metadata in the folder.
        ValueError: the folder's runs never reached the tracking step.
        ConfigError: the tracking server is unreachable.
        TrackingError: the server failed while logging (after the retries).
    """
    from tfx.types import artifact_utils

    from components.tracking.component import PipelineOutputs, TrackingSettings, track_outputs

    output = Path(output_dir).resolve()
    database = output / "metadata.sqlite"
    if not database.is_file():
        raise FileNotFoundError(f"{database}: no ML Metadata here; pass the --output folder of a segpipe run")
    store = metadata_store.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(str(database)))
    nodes = [context for context in store.get_contexts_by_type("node") if context.name.endswith(f".{TRACKER_ID}")]
    executions = [execution for node in nodes for execution in store.get_executions_by_context(node.id)]
    if not executions:
        raise ValueError(f"{output}: no pipeline run there reached the {TRACKER_ID} step; nothing to log")
    execution = max(executions, key=lambda item: item.id)
    inputs: dict[str, object] = {}
    for event in store.get_events_by_execution_ids([execution.id]):
        if event.type == metadata_store_pb2.Event.INPUT:
            (artifact,) = store.get_artifacts_by_id([event.artifact_id])
            (artifact_type,) = store.get_artifact_types_by_id([artifact.type_id])
            inputs[event.path.steps[0].key] = artifact_utils.deserialize_artifact(artifact_type, artifact)
    properties = {name: getattr(value, value.WhichOneof("value") or "string_value")
                  for name, value in execution.custom_properties.items()}
    run_values = [properties.get(name) for name in ("data_root", "training_epochs", "learning_rate", "miou_threshold")]
    uri = tracking_uri or properties["tracking_uri"]
    check_reachable(uri, origin="--tracking-uri" if tracking_uri else "the run's tracking URI")
    settings = TrackingSettings(tracking_uri=uri, experiment=properties["experiment"],
                                registered_model=properties["registered_model"],
                                run_params={**json.loads(properties["run_params"]),
                                            **{key: value for key, value in zip(RUN_VALUE_PARAMS, run_values)
                                               if value is not None}},
                                eval_split=properties["eval_split"],
                                artifact_location=properties.get("artifact_location", "") if not tracking_uri else "")
    outputs = PipelineOutputs(**{name: inputs.get(name) for name in PipelineOutputs.__dataclass_fields__})
    with mlflow_client_settings():
        run_id, version = track_outputs(outputs, settings)
    return run_id, version, uri
