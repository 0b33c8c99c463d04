"""TFX executor of :class:`~components.example_gen.component.SegmentationExampleGen` (a thin adapter).

The conversion itself is :func:`components.example_gen.ingest.IngestSplit`, the same Beam transform
``segpipe ingest`` runs. This module only adapts it to TFX's ``BaseExampleGenExecutor``:

* :meth:`Executor.GetInputSourceToExamplePTransform` returns :func:`SegmentationSplitToExamples`, a
  ``beam.ptransform_fn`` that reads one split (a VOC list or a Cityscapes folder) into serialised
  `tf.train.Example` s.
* :meth:`Executor.GenerateExamplesByBeam` applies it once per input split and hands it the split's
  name. (The base class passes only the split pattern, and the VOC patterns of different splits are
  the same glob: they describe what to fingerprint, see ``component.py``.) Output splits are the input
  splits; hash partitioning through ``output_config`` is refused.
* :meth:`Executor.Do` does what TFX's ``BaseExampleGenExecutor.Do`` does (split names, payload and file
  format on the artifact), except that it writes ``Split-<name>/data_tfrecord-*.gz`` with
  :func:`components.example_gen.ingest.WriteExamples`, which skips TFX's reshuffle so that a split is
  never gathered in memory. It then writes ``<examples uri>/ingestion_report.json``, records the counts
  as custom properties of the Examples artifact. In strict mode the first bad pair stops the Beam
  pipeline; a failed pipeline leaves no report and no shard, only ``INGESTION_FAILED.json``.

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

SPLIT_NAME_KEY = "_segpipe_split_name"
"""exec_properties key through which GenerateExamplesByBeam names the split being read."""

STAGING_DIR_KEY = "_segpipe_staging_dir"
"""exec_properties key through which Do tells the split reader where to stage report records."""


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


def _split_name_of(exec_properties: Mapping[str, Any], split_pattern: str) -> str:
    """The split being read: named by GenerateExamplesByBeam, else the only input split with this pattern."""
    if exec_properties.get(SPLIT_NAME_KEY):
        return exec_properties[SPLIT_NAME_KEY]
    input_config = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
    names = [split.name for split in input_config.splits if split.pattern == split_pattern]
    if len(names) != 1:
        raise ValueError(f"cannot tell which split pattern {split_pattern!r} belongs to (matches: {names})")
    return names[0]


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def SegmentationSplitToExamples(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str
) -> beam.PCollection:
    """Reads one split of a VOC or Cityscapes folder into serialised `tf.train.Example` s.

    The split's pairs are listed now (so that a missing list file or folder fails before Beam runs),
    then converted by :func:`components.example_gen.ingest.IngestSplit`.

    Args:
        pipeline: The Beam pipeline.
        exec_properties: The execution's properties: ``input_base``, ``custom_config``, ``input_config``,
            and the split name and staging folder set by :class:`Executor`.
        split_pattern: The split's file pattern (what TFX fingerprints; reading follows the layout).

    Returns:
        PCollection of serialised examples.
    """
    options = IngestionOptions.from_exec_properties(exec_properties)
    split = _split_name_of(exec_properties, split_pattern)
    root = datasets.resolve_dataset_root(options.dataset, exec_properties[standard_component_specs.INPUT_BASE_KEY])
    plan = datasets.plan_split(options.dataset, root, split, strict=options.strict)
    logging.info("SegmentationExampleGen: split %r: %d pairs listed in %s", split, plan.listed, plan.source)
    staging_dir = exec_properties[STAGING_DIR_KEY]
    return pipeline | "IngestSplit" >> ingest.IngestSplit(plan, staging_dir, options.strict)  # pylint: disable=no-value-for-parameter


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """ExampleGen executor for PASCAL VOC 2012 and Cityscapes folders (see the module docstring)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        """Returns the ptransform_fn that reads one split: :func:`SegmentationSplitToExamples`."""
        return SegmentationSplitToExamples

    def GenerateExamplesByBeam(
        self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]
    ) -> Dict[str, beam.PCollection]:
        """Reads every input split into its own output split of the same name.

        Args:
            pipeline: The Beam pipeline.
            exec_properties: The execution's properties.

        Returns:
            Split name -> PCollection of serialised examples.

        Raises:
            ValueError: If ``output_config`` asks for hash partitioning into other splits.
        """
        input_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
        output_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
        if output_config.split_config.splits:
            raise ValueError("SegmentationExampleGen keeps the dataset's own splits; "
                             "output_config.split_config (hash partitioning) is not supported")
        read_split = self.GetInputSourceToExamplePTransform()
        examples_by_split = {}
        for split in input_config.splits:
            split_properties = {**exec_properties, SPLIT_NAME_KEY: split.name}
            read_this_split = read_split(split_properties, split.pattern)  # pylint: disable=no-value-for-parameter
            examples_by_split[split.name] = pipeline | f"InputToRecord[{split.name}]" >> read_this_split
        return examples_by_split

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

        self._log_startup(input_dict, output_dict, exec_properties)
        examples_artifact.split_names = artifact_utils.encode_split_names(
            [split.name for split in input_config.splits])
        split_names = [split.name for split in input_config.splits]
        split_dirs = [artifact_utils.get_split_uri([examples_artifact], name) for name in split_names]
        try:
            with self._make_beam_pipeline() as pipeline:
                splits = self.GenerateExamplesByBeam(pipeline, {**exec_properties, STAGING_DIR_KEY: staging_dir})
                for split_name, split_examples in splits.items():
                    split_dir = artifact_utils.get_split_uri([examples_artifact], split_name)
                    _ = split_examples | f"WriteSplit[{split_name}]" >> ingest.WriteExamples(split_dir)  # pylint: disable=no-value-for-parameter
        except Exception as error:  # pylint: disable=broad-except  # marked as failed, then raised again
            stopped = ingest.fail_ingestion(examples_artifact.uri, staging_dir, split_dirs, split_names, error)
            if stopped is not None:
                raise stopped from None
            raise
        examples_utils.set_payload_format(
            examples_artifact, exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
            or example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(
            examples_artifact, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))

        report = ingest.finish_ingestion(
            staging_dir, report_path, options.dataset, root,
            [split.name for split in input_config.splits], options.skipped_splits, options.strict)
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
