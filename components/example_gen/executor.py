"""TFX executor of :class:`~components.example_gen.component.SegmentationExampleGen` (a thin adapter).

The conversion itself is :func:`components.example_gen.ingest.IngestSplits`, the same Beam transform
``segpipe ingest`` runs, over every split at once. This module only adapts it to TFX's
``BaseExampleGenExecutor``: :meth:`Executor.Do` does what TFX's ``BaseExampleGenExecutor.Do`` does (split
names, payload and file format on the artifact), except that the transform writes
``Split-<name>/data_tfrecord-*.gz`` itself (each worker writes the shards it converts) instead of handing
TFX one stream of records per split to reshuffle and write: a split is never gathered in memory, and the
graph stays within what Beam's Dask runner can run (see :func:`~components.example_gen.ingest.IngestSplits`).
So TFX's per-split hooks (``GetInputSourceToExamplePTransform``, ``GenerateExamplesByBeam``) are not
used. Output splits are the input splits; hash partitioning through ``output_config`` is refused. It then
writes ``<examples uri>/ingestion_report.json`` and records the counts as custom properties of the
Examples artifact. In strict mode the first bad pair stops the Beam pipeline; a failed pipeline leaves no
report and no shard, only ``INGESTION_FAILED.json``.

On the Dask runner (``--runner=apache_beam.runners.dask.dask_runner.DaskRunner`` in the component's Beam
arguments) without a scheduler address, it runs on a local cluster on 127.0.0.1 that it starts and closes
(:mod:`components.dask_cluster`).

Options reach the executor in ``custom_config``: an ``example_gen_pb2.CustomConfig`` packing a
``google.protobuf.Struct`` of :class:`IngestionOptions`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping

import apache_beam as beam
from absl import logging
from google.protobuf import json_format, struct_pb2
from tfx import types
from tfx.components.example_gen import base_example_gen_executor, write_split
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.core import datasets
from components.core.datasets.splits import SkippedSplit
from components.example_gen import ingest

@dataclasses.dataclass(frozen=True)
class IngestionOptions:
    """The executor's options, carried in ``custom_config``.

    Attributes:
        dataset: Canonical dataset name, ``"pascal_voc"`` or ``"cityscapes"``.
        strict: Fail on the first bad pair instead of quarantining it.
        skipped_splits: Requested splits left out on purpose (Cityscapes ``test``), for the report.
        list_digests: SHA-256 of each VOC list file when the component was built. Unused by the
            executor; being part of the execution properties, it makes an edited list file change TFX's
            cache key (the split pattern's fingerprint only sees file sizes and modification times).
        require_examples: Fail (after writing the report) when a split yields no example, so that a
            pipeline stops before training on, or evaluating, nothing.
    """

    dataset: str
    strict: bool = False
    skipped_splits: tuple[SkippedSplit, ...] = ()
    list_digests: Mapping[str, str] = dataclasses.field(default_factory=dict)
    require_examples: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON-able form stored in the ``Struct``."""
        return {
            "dataset": self.dataset,
            "strict": self.strict,
            "skipped_splits": [{"split": item.name, "reason": item.reason} for item in self.skipped_splits],
            "list_digests": dict(self.list_digests),
            "require_examples": self.require_examples,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> IngestionOptions:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: If the dataset is unknown or a key is not an option.
        """
        unknown = set(values) - {"dataset", "strict", "skipped_splits", "list_digests", "require_examples"}
        if unknown:
            raise ValueError(f"unknown SegmentationExampleGen options: {sorted(unknown)}")
        return cls(
            dataset=datasets.dataset_name(values["dataset"]),
            strict=bool(values.get("strict", False)),
            skipped_splits=tuple(SkippedSplit(item["split"], item["reason"])
                                 for item in values.get("skipped_splits", ())),
            list_digests=dict(values.get("list_digests", {})),
            require_examples=bool(values.get("require_examples", False)),
        )

    def to_custom_config(self) -> example_gen_pb2.CustomConfig:
        """Packs the options as ExampleGen's ``custom_config``."""
        struct = struct_pb2.Struct()
        struct.update(self.to_dict())
        config = example_gen_pb2.CustomConfig()
        config.custom_config.Pack(struct)
        return config

    @classmethod
    def from_exec_properties(cls, exec_properties: Mapping[str, Any]) -> IngestionOptions:
        """Reads the options from an execution's properties (``custom_config`` as JSON text or proto).

        Raises:
            ValueError: If ``custom_config`` is missing or does not pack a Struct of options.
        """
        raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
        if not raw:
            raise ValueError("SegmentationExampleGen needs custom_config (dataset, strict...); none was given")
        config = raw if isinstance(raw, example_gen_pb2.CustomConfig) else \
            proto_utils.json_to_proto(raw, example_gen_pb2.CustomConfig())
        struct = struct_pb2.Struct()
        if not config.custom_config.Unpack(struct):
            raise ValueError(f"custom_config must pack a google.protobuf.Struct, got {config.custom_config.type_url}")
        return cls.from_dict(json_format.MessageToDict(struct))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """ExampleGen executor for PASCAL VOC 2012 and Cityscapes folders (see the module docstring)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        """Not used: :meth:`Do` writes every split with :func:`components.example_gen.ingest.IngestSplits`.

        Raises:
            NotImplementedError: Always (TFX's base ``Do``, the only caller, is overridden).
        """
        raise NotImplementedError("SegmentationExampleGen writes its shards itself (Executor.Do, ingest.IngestSplits); "
                                  "it hands TFX no per-split record stream")

    def Do(
        self,
        input_dict: Dict[str, List[types.Artifact]],
        output_dict: Dict[str, List[types.Artifact]],
        exec_properties: Dict[str, Any],
    ) -> None:
        """Writes the example splits, then the ingestion report and the artifact's count properties.

        Custom properties set on the Examples artifact: ``ingestion_report`` (URI of the JSON report),
        ``ingestion_listed``, ``ingestion_written``, ``ingestion_quarantined`` (totals) and
        ``ingestion_split_counts`` (JSON: split -> listed/written/quarantined).

        Raises:
            IngestionError: If the folder, a list file or a split folder is missing (before Beam runs);
                in strict mode at the first bad pair, which stops the Beam pipeline: no report is written,
                partial shards are deleted and ``INGESTION_FAILED.json`` marks the folder (as after any
                failure of the pipeline); with ``require_examples``, after the report, for a split
                without examples.
        """
        options = IngestionOptions.from_exec_properties(exec_properties)
        root = datasets.resolve_dataset_root(options.dataset, exec_properties[standard_component_specs.INPUT_BASE_KEY])
        examples_artifact = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        staging_dir = os.path.join(examples_artifact.uri, ingest.STAGING_DIR_NAME)
        report_path = os.path.join(examples_artifact.uri, ingest.REPORT_FILE_NAME)
        input_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
        output_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
        if output_config.split_config.splits:
            raise ValueError("SegmentationExampleGen keeps the dataset's own splits; "
                             "output_config.split_config (hash partitioning) is not supported")

        self._log_startup(input_dict, output_dict, exec_properties)
        split_names = [split.name for split in input_config.splits]
        examples_artifact.split_names = artifact_utils.encode_split_names(split_names)
        split_dirs = {name: artifact_utils.get_split_uri([examples_artifact], name) for name in split_names}
        # Listed now, so that a missing list file or folder fails before Beam runs.
        plans = [datasets.plan_split(options.dataset, root, split, strict=options.strict) for split in split_names]
        for plan in plans:
            logging.info("SegmentationExampleGen: split %r: %d pairs listed in %s", plan.name, plan.listed, plan.source)
        try:
            ingest.run_ingestion_pipeline(self._beam_pipeline_args, plans, split_dirs, staging_dir, options.strict,
                                          make_pipeline=self._make_beam_pipeline)
        except Exception as error:  # pylint: disable=broad-except  # marked as failed, then raised again
            stopped = ingest.fail_ingestion(examples_artifact.uri, staging_dir, list(split_dirs.values()),
                                            split_names, error)
            if stopped is not None:
                raise stopped from None
            raise
        examples_utils.set_payload_format(
            examples_artifact, exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
            or example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(
            examples_artifact, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))

        report = ingest.finish_ingestion(
            staging_dir, report_path, options.dataset, root, split_names, options.skipped_splits, options.strict)
        for artifact in output_dict[standard_component_specs.EXAMPLES_KEY]:
            artifact.set_string_custom_property("ingestion_report", report_path)
            for total in ("listed", "written", "quarantined"):
                artifact.set_int_custom_property(f"ingestion_{total}", report["totals"][total])
            artifact.set_string_custom_property("ingestion_split_counts", json.dumps(
                {split: {key: counts[key] for key in ("listed", "written", "quarantined")}
                 for split, counts in report["splits"].items()}, sort_keys=True))
        ingest.raise_for_report(report, report_path)
        if options.require_examples:
            ingest.raise_for_empty_splits(report)
