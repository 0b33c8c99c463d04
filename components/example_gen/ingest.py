"""The Beam side of ingestion, shared by the TFX ExampleGen executor and the standalone ``segpipe ingest``.

Every split flows through :func:`IngestSplits` (the only copy of the conversion graph)::

    Create(shard tasks: contiguous runs of up to PAIRS_PER_SHARD listed pairs, ids and paths only)
      -> ParDo(WriteShardFn): read, validate, encode each pair; write the shard
         <split_dir>/data_tfrecord-SSSSS-of-NNNNN.gz; stage one outcome record per pair
         (written, or quarantined with file and reason) as JSON lines in a staging folder

No step holds more than one shard's examples, and encoded images never leave the worker that made them.
The graph uses nothing but ``Create`` and a single-output ``ParDo`` so that it runs the same on every Beam
runner, Beam's Dask runner included (why that matters is in :func:`IngestSplits`). A bad pair is caught in
the worker and quarantined, so that it never surfaces as a Beam worker's traceback; in strict mode the
worker instead stages that pair's record and fails its bundle, which stops the pipeline. The number of pairs
listed (and their ids) is staged when the pipeline is built. After the Beam pipeline has run,
:func:`finish_ingestion` reads the staged records back, writes ``ingestion_report.json`` (which reconciles:
listed = written + quarantined, per split) and deletes the staging folder. When the pipeline fails (strict
stop or anything else), :func:`fail_ingestion` deletes the partial shards, writes ``INGESTION_FAILED.json``
instead of a report and names the bad pair that stopped it (an
:class:`~components.core.datasets.splits.IngestionError`, first in split order, then id order). Problems
visible before Beam starts (no such folder or layout, a missing list file, in strict mode an unusable id or
an empty split) raise at once, before any pipeline runs or anything is written.

Shards hold contiguous runs of the listing, so the same listing gives the same shard files on any runner.
:func:`ingest` is the standalone entry point behind ``segpipe ingest``; it writes what the ExampleGen
writes: ``<out>/<split>/data_tfrecord-*.gz`` plus ``<out>/ingestion_report.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import uuid
from typing import Any, Mapping, Sequence

import apache_beam as beam
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from components import artifacts, beam_options, dask_cluster
from components.core import datasets, examples, ingestion
from components.core.datasets.splits import IngestionError, PairCandidate, SkippedSplit, SplitPlan
from components.core.label_maps import load_label_map
from components.log_setup import quiet_beam_worker

logger = logging.getLogger(__name__)

REPORT_FILE_NAME = artifacts.INGESTION_REPORT_FILE

TFRECORD_FILE_PREFIX = "data_tfrecord"
"""Prefix of the TFRecord shards in a split folder, as TFX writes them (``tfx.components.example_gen.write_split.
DEFAULT_TF_RECORD_FILE_NAME``; a test checks they agree). Not imported from there: ``tfx.components`` imports
every TFX component (~4 s), which every Beam worker process would pay before its first shard."""

STAGING_DIR_NAME = "_ingestion_staging"
"""Folder (next to the report) holding per-split records while Beam runs; deleted afterwards."""

FAILED_MARKER_NAME = "INGESTION_FAILED.json"
"""Written (instead of the report) into the output folder of an ingestion that failed once Beam started:
the error, and in strict mode the pair at fault. Its presence says the folder holds no usable output."""

STRICT_FAILURE_PREFIX = "strict_failure"
"""Staged by a strict-mode worker for the bad pair it stops at (``<staging>/<split>/strict_failure-*.json``)."""

QUARANTINE_STATUS = "quarantine"
"""``status`` of the staged outcome record of a bad pair (with its file and reason)."""

WRITTEN_STATUS = "written"
"""``status`` of the staged outcome record of an example written."""

PAIRS_PER_SHARD = 100
"""Most pairs in one TFRecord shard (one unit of work): VOC 2012 train gives 15 shards, Cityscapes train 30."""

TEMPORARY_SHARD_PREFIX = ".writing-"
"""Name prefix of a shard being written (renamed when whole; deleted by :func:`fail_ingestion`)."""
_METRICS_NAMESPACE = "segpipe.ingestion"


@dataclasses.dataclass(frozen=True)
class ShardTask:
    """One output shard to write: a contiguous run of one split's listed pairs.

    Attributes:
        split: The split.
        index: The shard's number in its split, from 0.
        count: The split's number of shards.
        split_dir: The split's output folder.
        candidates: The pairs, in listing order.
    """

    split: str
    index: int
    count: int
    split_dir: str
    candidates: tuple[PairCandidate, ...]

    @property
    def file_name(self) -> str:
        """``data_tfrecord-SSSSS-of-NNNNN.gz``: Beam's shard naming, which TFX's readers glob."""
        return f"{TFRECORD_FILE_PREFIX}-{self.index:05d}-of-{self.count:05d}.gz"


def shard_tasks(plan: SplitPlan, split_dir: str, pairs_per_shard: int = PAIRS_PER_SHARD) -> list[ShardTask]:
    """Cuts a split's listing into shards of at most `pairs_per_shard` pairs (at least one shard, even
    for an empty split, so that every split folder exists), in listing order."""
    candidates = tuple(plan.candidates)
    count = max(1, -(-len(candidates) // pairs_per_shard))
    return [ShardTask(plan.name, index, count, split_dir, candidates[index * pairs_per_shard:(index + 1) * pairs_per_shard])
            for index in range(count)]


class WriteShardFn(beam.DoFn):
    """Reads, validates and encodes the pairs of one :class:`ShardTask` and writes them as its gzip
    TFRecord shard, then stages one outcome record per pair (``<staging>/<split>/outcomes-SSSSS``, JSON
    lines); it outputs nothing.

    Both files are written under a temporary name and renamed, so a retried shard replaces its first try
    and a shard file is always whole. Outcome records: ``{"split", "id", "status": "written"}`` per
    example written; for a pair that cannot be ingested ``{"split", "id", "file", "reason", "status":
    "quarantine"}`` (unexpected decoder failures are quarantined too, so that no worker ever fails on a
    bad file). In strict mode the first bad pair is staged for :func:`fail_ingestion` and fails the bundle.
    """

    def __init__(self, dataset: str, root: str, staging_dir: str, strict: bool = False):
        """Args: dataset: canonical dataset name, e.g. ``"pascal_voc"``; root: the dataset root (to
        report files reached through symbolic links); staging_dir: the staging folder; strict: stop at
        the first bad pair instead of quarantining it."""
        super().__init__()
        self._dataset = dataset
        self._root = root
        self._staging_dir = staging_dir
        self._strict = strict
        self._real_root = ""
        self._label_map = None
        self._written = beam.metrics.Metrics.counter(_METRICS_NAMESPACE, "examples_written")
        self._quarantined = beam.metrics.Metrics.counter(_METRICS_NAMESPACE, "pairs_quarantined")

    def setup(self) -> None:
        quiet_beam_worker()
        self._label_map = load_label_map(datasets.label_map_name(self._dataset))
        self._real_root = os.path.realpath(self._root) if self._root and "://" not in self._root else ""

    def process(self, task: ShardTask):
        shard_path = os.path.join(task.split_dir, task.file_name)
        temporary = os.path.join(task.split_dir, f"{TEMPORARY_SHARD_PREFIX}{uuid.uuid4().hex}")
        tf.io.gfile.makedirs(task.split_dir)
        records = []
        with tf.io.TFRecordWriter(temporary, options="GZIP") as writer:
            for candidate in task.candidates:
                serialized, record = self.convert(candidate)
                if serialized is not None:
                    writer.write(serialized)
                    self._written.inc()
                else:
                    if self._strict:
                        self._stop(record)
                    self._quarantined.inc()
                records.append(json.dumps({**record, **self._links(candidate)}, sort_keys=True))
        tf.io.gfile.rename(temporary, shard_path, overwrite=True)
        outcomes = f"{_outcomes_prefix(self._staging_dir, task.split)}-{task.index:05d}"
        with tf.io.gfile.GFile(outcomes + ".tmp", "w") as handle:
            handle.write("".join(line + "\n" for line in records))
        tf.io.gfile.rename(outcomes + ".tmp", outcomes, overwrite=True)
        return []

    def convert(self, candidate: PairCandidate) -> tuple[bytes | None, dict[str, Any]]:
        """(serialised example, its ``written`` record), or (None, the pair's ``quarantine`` record)."""
        try:
            serialized = examples.serialize_example(ingestion.load_pair(candidate, self._label_map))
        except IngestionError as error:
            record = ingestion.quarantine_record(error, candidate)
        except Exception as error:  # pylint: disable=broad-except  # a decoder bug must not kill the run
            record = {"split": candidate.split, "id": candidate.example_id,
                      "file": candidate.image_path or candidate.problem_path or "",
                      "reason": f"unexpected error: {type(error).__name__}: {error}"}
        else:
            return serialized, {"split": candidate.split, "id": candidate.example_id, "status": WRITTEN_STATUS}
        return None, {**record, "status": QUARANTINE_STATUS}

    def _stop(self, record: Mapping[str, str]) -> None:
        """Strict mode: stages the bad pair's record (for :func:`fail_ingestion`) and fails the bundle,
        which stops the pipeline before the report is written."""
        path = os.path.join(self._staging_dir, record["split"], f"{STRICT_FAILURE_PREFIX}-{uuid.uuid4().hex}.json")
        with tf.io.gfile.GFile(path, "w") as handle:
            handle.write(json.dumps({key: value for key, value in record.items() if key != "status"}))
        raise ingestion.error_from_record(record)

    def _links(self, candidate: PairCandidate) -> dict[str, Any]:
        """``{"links": [...]}`` when a file of the pair was reached through a symbolic link, else ``{}``."""
        links = ingestion.followed_links(candidate, self._root, self._real_root) if self._real_root else []
        return {"links": links} if links else {}


def _outcomes_prefix(staging_dir: str, split: str) -> str:
    return os.path.join(staging_dir, split, "outcomes")


def _listing_path(staging_dir: str, split: str) -> str:
    return os.path.join(staging_dir, split, "listing.json")


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
def IngestSplits(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, plans: Sequence[SplitPlan], split_dirs: Mapping[str, str], staging_dir: str,
    strict: bool = False
) -> beam.PCollection:
    """Converts the pairs of every split and writes them as sharded gzip TFRecords, staging one outcome
    record per pair for :func:`finish_ingestion`.

    The graph is ``Create(shard tasks of all splits) -> ParDo(WriteShardFn)``: one source, one
    single-output step, no Beam IO connector, no side input, nothing emitted from ``finish_bundle``. It
    must stay that simple to run on Beam's Dask runner (``apache_beam/runners/dask``, Beam 2.74), which:
    keys its translated bags by producing transform, so every output of a multi-output ParDo reaches
    every consumer of any of them (the ``written`` records of a tagged output once reached the
    examples' TFRecord sink: ``AssertionError: ({'split': 'val', ...}, <class 'dict'>)``); computes only
    the bag of the last transform visited, so other branches of the graph never run; drops what a DoFn
    outputs in ``finish_bundle``, so ``WriteToText``/``WriteToTFRecord`` finalise empty files (exit code
    0); and has no translation for ``beam.io.Read``. Each shard is written by the worker that converts
    its pairs, so encoded images never travel to the runner.

    Args:
        pipeline: The Beam pipeline.
        plans: The splits' pairs (:func:`components.core.datasets.plan_split`).
        split_dirs: Split name -> its output folder.
        staging_dir: Folder receiving ``<split>/listing.json`` (written now, while the pipeline is
            built) and ``<split>/outcomes-*`` (JSON lines, written as it runs).
        strict: Stop at the first bad pair: it is staged for :func:`fail_ingestion` and the pipeline fails.

    Returns:
        The (empty) output of the writing step.
    """
    tasks = []
    for plan in plans:
        tf.io.gfile.makedirs(os.path.join(staging_dir, plan.name))
        with tf.io.gfile.GFile(_listing_path(staging_dir, plan.name), "w") as handle:
            handle.write(json.dumps({"source": plan.source, "listed": plan.listed,
                                     "ids": [candidate.example_id for candidate in plan.candidates]}))
        tasks += shard_tasks(plan, split_dirs[plan.name])
    dataset, root = plans[0].dataset, plans[0].root
    return (pipeline
            | "ListShards" >> beam.Create(tasks)  # reshuffles on DirectRunner: shards spread over the workers
            | "ReadValidateEncodeWrite" >> beam.ParDo(WriteShardFn(dataset, root, staging_dir, strict)))


def count_shard_tasks(plans: Sequence[SplitPlan]) -> int:
    """How many shards :func:`IngestSplits` writes for these splits (the Dask runner's partition count)."""
    return sum(max(1, -(-len(plan.candidates) // PAIRS_PER_SHARD)) for plan in plans)


def run_ingestion_pipeline(beam_args: Sequence[str], plans: Sequence[SplitPlan], split_dirs: Mapping[str, str],
                           staging_dir: str, strict: bool, make_pipeline=None) -> None:
    """Builds and runs :func:`IngestSplits` on the runner `beam_args` choose (on the Dask runner without a
    scheduler address, on a local cluster started and closed here: :mod:`components.dask_cluster`).

    Args:
        beam_args: Beam pipeline arguments.
        plans, split_dirs, staging_dir, strict: As :func:`IngestSplits` takes them.
        make_pipeline: Builds the pipeline when the arguments are used as given (the TFX executor's
            ``_make_beam_pipeline``); default ``beam.Pipeline(options=...)``.
    """
    with dask_cluster.local_dask_cluster(beam_args, default_partitions=count_shard_tasks(plans)) as args:
        pipeline = (make_pipeline() if make_pipeline is not None and list(args) == list(beam_args)
                    else beam.Pipeline(options=PipelineOptions(args)))
        _ = pipeline | "Ingest" >> IngestSplits(plans, split_dirs, staging_dir, strict)  # pylint: disable=no-value-for-parameter
        pipeline.run().wait_until_finish()


def _read_split_outcome(staging_dir: str, split: str) -> ingestion.SplitOutcome:
    """Reads back what :func:`IngestSplits` staged for one split."""
    with tf.io.gfile.GFile(_listing_path(staging_dir, split), "r") as handle:
        listing = json.load(handle)
    records = []
    for path in sorted(tf.io.gfile.glob(_outcomes_prefix(staging_dir, split) + "*")):
        with tf.io.gfile.GFile(path, "r") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    quarantined = tuple({key: value for key, value in record.items() if key not in ("status", "links")}
                        for record in records if record["status"] == QUARANTINE_STATUS)
    return ingestion.SplitOutcome(
        name=split,
        source=listing["source"],
        listed=listing["listed"],
        written=sum(record["status"] == WRITTEN_STATUS for record in records),
        quarantined=quarantined,
        ids=tuple(listing.get("ids", ())),
        links=tuple(link for record in records for link in record.get("links", ())),
    )


def finish_ingestion(
    staging_dir: str,
    report_path: str,
    dataset_format: str,
    root: str,
    split_names: Sequence[str],
    skipped: Sequence[SkippedSplit] = (),
    strict: bool = False,
) -> dict[str, Any]:
    """Builds the report from the staged records, writes it as JSON and deletes the staging folder.

    Args:
        staging_dir: The folder given to :func:`IngestSplits`.
        report_path: Where to write the JSON report.
        dataset_format: ``voc``/``pascal_voc`` or ``cityscapes``.
        root: The dataset root.
        split_names: The ingested splits, in request order.
        skipped: Splits deliberately not ingested.
        strict: Whether the run is strict (recorded in the report).

    Returns:
        The report (see :func:`components.core.ingestion.build_report`).
    """
    outcomes = [_read_split_outcome(staging_dir, split) for split in split_names]
    report = ingestion.build_report(dataset_format, root, outcomes, skipped, strict)
    tf.io.gfile.makedirs(os.path.dirname(report_path) or ".")
    with tf.io.gfile.GFile(report_path, "w") as handle:
        handle.write(json.dumps(report, indent=2) + "\n")
    tf.io.gfile.rmtree(staging_dir)
    for split, counts in report["splits"].items():
        logger.info("ingestion: split %r: %d listed, %d written, %d quarantined",
                    split, counts["listed"], counts["written"], counts["quarantined"])
    for warning in report["warnings"]:
        logger.warning("ingestion: %s", warning)
    for record in report["quarantine"]:
        logger.warning("ingestion: quarantined %s/%s: %s: %s",
                       record["split"], record["id"], record["file"], record["reason"])
    return report


def raise_for_report(report: Mapping[str, Any], report_path: str) -> None:
    """Fails a run whose report does not reconcile, or, in strict mode, that quarantined a pair.

    Args:
        report: The report from :func:`finish_ingestion`.
        report_path: Its path, named in the error.

    Raises:
        IngestionError: Naming the first quarantined pair's file and reason (strict mode), or the report
            when its counts do not reconcile (a bug).
    """
    if not report["reconciled"]:
        raise IngestionError(report_path, "ingestion counts do not reconcile: listed != written + quarantined")
    if report["strict"] and report["quarantine"]:
        raise ingestion.error_from_record(report["quarantine"][0])


def fail_ingestion(out_dir: str, staging_dir: str, split_dirs: Sequence[str], split_names: Sequence[str],
                   error: BaseException) -> IngestionError | None:
    """Marks the output folder of an ingestion whose Beam pipeline failed, and says why.

    Deletes what the failed pipeline left in the split folders (shards, Beam's temporary folders) and the
    staging folder, and writes :data:`FAILED_MARKER_NAME` (no report is written: a folder without a
    reconciled report, or with this marker, is not a usable output).

    Args:
        out_dir: The output folder (the Examples artifact's URI in the ExampleGen).
        staging_dir: The staging folder given to :func:`IngestSplits`.
        split_dirs: The split folders the pipeline wrote to.
        split_names: The splits, in request order.
        error: What the pipeline raised.

    Returns:
        In strict mode, the :class:`IngestionError` of the bad pair that stopped it (the first in split
        order, then id order, when several workers stopped at once); else None (the caller re-raises).
    """
    records = []
    for order, split in enumerate(split_names):
        for path in tf.io.gfile.glob(os.path.join(staging_dir, split, STRICT_FAILURE_PREFIX + "-*")):
            with tf.io.gfile.GFile(path, "r") as handle:
                record = json.load(handle)
            records.append((order, record["id"], record))
    first = min(records, key=lambda item: item[:2])[2] if records else None
    for split_dir in split_dirs:
        for pattern in (TFRECORD_FILE_PREFIX + "-*", TEMPORARY_SHARD_PREFIX + "*"):
            for path in tf.io.gfile.glob(os.path.join(split_dir, pattern)):
                tf.io.gfile.remove(path)
        for path in tf.io.gfile.glob(os.path.join(split_dir, "beam-temp-*")):
            tf.io.gfile.rmtree(path)
    if tf.io.gfile.exists(staging_dir):
        tf.io.gfile.rmtree(staging_dir)
    stopped = ingestion.error_from_record(first) if first else None
    marker = {"status": "failed", "error": str(stopped or error) or type(error).__name__,
              "strict_stop": {key: first[key] for key in ("split", "id", "file", "reason")} if first else None}
    tf.io.gfile.makedirs(out_dir)
    with tf.io.gfile.GFile(os.path.join(out_dir, FAILED_MARKER_NAME), "w") as handle:
        handle.write(json.dumps(marker, indent=2) + "\n")
    logger.warning("ingestion: failed; %s marks %s as holding no usable output", FAILED_MARKER_NAME, out_dir)
    return stopped


def raise_for_empty_splits(report: Mapping[str, Any]) -> None:
    """Fails when a split of the report yields no example (a pipeline would train or evaluate on nothing).

    Raises:
        IngestionError: Naming the first such split's list file or folder, and its counts.
    """
    for split, counts in report["splits"].items():
        if counts["written"] == 0:
            raise IngestionError(counts["source"], f"split {split!r} yields no example ({counts['listed']} listed, "
                                                   f"{counts['quarantined']} quarantined): the pipeline stops before "
                                                   "training")


def _remove_previous_outputs(out_dir: str, split_names: Sequence[str]) -> None:
    """Deletes TFRecord shards and the report a previous run left, so that no stale shard survives."""
    stale = [os.path.join(out_dir, REPORT_FILE_NAME), os.path.join(out_dir, FAILED_MARKER_NAME)]
    for split in split_names:
        stale += tf.io.gfile.glob(os.path.join(out_dir, split, TFRECORD_FILE_PREFIX + "-*"))
    for path in stale:
        if tf.io.gfile.exists(path):
            logger.info("ingestion: removing previous output %s", path)
            tf.io.gfile.remove(path)
    if tf.io.gfile.exists(os.path.join(out_dir, STAGING_DIR_NAME)):
        tf.io.gfile.rmtree(os.path.join(out_dir, STAGING_DIR_NAME))


def ingest(
    dataset_format: str,
    data_dir: str,
    out_dir: str,
    splits: Sequence[str] | None = None,
    strict: bool = False,
    beam_pipeline_args: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Converts a VOC 2012 or Cityscapes folder to gzip TFRecord splits and an ingestion report.

    Writes ``<out_dir>/<split>/data_tfrecord-*.gz`` (sharded, as TFX's ExampleGen writes them) and
    ``<out_dir>/ingestion_report.json``; shards and report of a previous run into the same folder are
    replaced.

    Args:
        dataset_format: ``voc`` (or ``pascal_voc``) or ``cityscapes``.
        data_dir: VOC: the folder holding ``VOCdevkit``, ``VOCdevkit`` or ``VOC2012``. Cityscapes: the
            folder holding ``leftImg8bit`` and ``gtFine``.
        out_dir: Output folder.
        splits: Splits to ingest (VOC list names such as ``train``, ``val``, ``trainval``, ``train_aug``;
            Cityscapes folders). Cityscapes ``test`` is skipped (no usable labels), as the report says.
            None: those of ``train`` and ``val`` the dataset has (the others are listed as skipped in
            the report, and which are ingested is logged).
        strict: Stop at the first bad pair (an :class:`IngestionError` naming file and reason; no report,
            no shard, ``INGESTION_FAILED.json`` in ``out_dir``) instead of quarantining it, and fail on an
            empty split.
        beam_pipeline_args: Beam options, e.g. ``["--runner=DataflowRunner", ...]``; default:
            :func:`components.beam_options.ingestion_args` (DirectRunner, multi-threaded). With
            ``--runner=apache_beam.runners.dask.dask_runner.DaskRunner`` and no scheduler address, a local
            Dask cluster is started for the run (:mod:`components.dask_cluster`).

    Returns:
        The report (see :func:`components.core.ingestion.build_report`).

    Raises:
        IngestionError: Before Beam starts, if the folder is not in the layout, a list file or split
            folder is missing, or no split is left; in strict mode also for an unusable id, an empty split
            or (stopping the pipeline, see :func:`fail_ingestion`) the first bad pair.
        ValueError: If the format or a split name is invalid.
    """
    dataset = datasets.dataset_name(dataset_format)
    root = datasets.resolve_dataset_root(dataset, str(data_dir))
    if splits is None:
        kept, skipped = datasets.default_splits(dataset, root)
        logger.log(logging.WARNING if skipped else logging.INFO,
                   "ingestion: no splits named: ingesting %s from %s%s", ", ".join(kept), root,
                   "".join(f"; {item.name}: {item.reason.split(' (')[0]}" for item in skipped))
    else:
        kept, skipped = datasets.partition_splits(dataset, list(splits))
    if not kept:
        raise IngestionError(str(data_dir), f"no split left to ingest (requested: {', '.join(splits)})")
    plans = [datasets.plan_split(dataset, root, split, strict=strict) for split in kept]

    out_dir = str(out_dir)
    staging_dir = os.path.join(out_dir, STAGING_DIR_NAME)
    _remove_previous_outputs(out_dir, kept)
    options = list(beam_pipeline_args) if beam_pipeline_args else beam_options.ingestion_args()
    if beam_options.is_local_runner(options):
        beam_options.bind_local_beam_servers_to_loopback()
    split_dirs = {split: os.path.join(out_dir, split) for split in kept}
    try:
        run_ingestion_pipeline(options, plans, split_dirs, staging_dir, strict)
    except Exception as error:  # pylint: disable=broad-except  # marked as failed, then raised again
        stopped = fail_ingestion(out_dir, staging_dir, list(split_dirs.values()), kept, error)
        if stopped is not None:
            raise stopped from None
        raise
    report_path = os.path.join(out_dir, REPORT_FILE_NAME)
    report = finish_ingestion(staging_dir, report_path, dataset, root, kept, skipped, strict)
    raise_for_report(report, report_path)
    return report
