"""``SegmentationExampleGen``: the TFX ExampleGen for PASCAL VOC 2012 and Cityscapes folders.

A ``FileBasedExampleGen`` whose executor (:mod:`components.example_gen.executor`) turns each requested
split into ``Split-<name>/data_tfrecord-*.gz`` of the examples described in
:mod:`components.core.examples`, and writes ``ingestion_report.json`` beside them. It runs on any Beam
runner.

Caching. TFX decides whether an ExampleGen run can be reused from a fingerprint of the files its split
patterns match (their count, total size and modification times) plus the execution properties.
Reading is driven by the layout, not by the pattern, so each layout's ``split_file_pattern``
(:mod:`components.core.datasets.voc`, :mod:`components.core.datasets.cityscapes`) is chosen to cover
what the split's examples depend on:

* Cityscapes split ``s``: ``*/s/*/*`` under the root: every image and every ``gtFine`` file of the split.
* VOC, every split: ``[IJS]*/*`` under ``VOC2012``: all of ``JPEGImages/``, ``SegmentationClass/``
  (and ``SegmentationClassAug/``, ``SegmentationObject/``) and the entries of ``ImageSets/``. A list
  file is one level deeper than a glob of one pattern can reach alongside the images, so the SHA-256
  of each list file (for layouts whose ``SPLITS_LISTED_IN_FILES``) is also put in ``custom_config`` when
  the component is built: editing a list changes
  the execution properties, hence the cache key, the next time the pipeline is built.

Editing, adding or deleting an image or mask therefore invalidates the cache. What the fingerprint
cannot see is a file rewritten with the same size within the same second, or (for a remote dataset,
which is not inspected when the pipeline is built) an edited VOC list: run with caching off
(``enable_cache=False``, as ``segpipe run`` can) after such changes.

Local dataset folders are checked when the component is built (layout, list files, split folders),
so a wrong path fails at once; remote ones (``gs://``...) and a runtime parameter (a compiled Kubeflow
pipeline's data root, known only when the run starts) are checked by the executor before Beam runs.
"""

from __future__ import annotations

import logging
from typing import Sequence

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2

from components.core import datasets
from components.core.datasets import files
from components.core.datasets.splits import IngestionError, empty_split_reason
from components.example_gen import executor

logger = logging.getLogger(__name__)


def split_pattern(dataset_format: str, split: str) -> str:
    """Returns the file pattern of a split, relative to the dataset root (what TFX fingerprints).

    Args:
        dataset_format: ``voc``/``pascal_voc`` or ``cityscapes``.
        split: Split name.
    """
    return datasets.layout_of(dataset_format).split_file_pattern(split)


def _is_remote(path: str) -> bool:
    return "://" in path


class SegmentationExampleGen(FileBasedExampleGen):
    """ExampleGen for an unpacked PASCAL VOC 2012 or Cityscapes folder.

    Output: one ``Examples`` artifact whose splits are the requested splits (Cityscapes ``test`` is
    skipped, as the ingestion report says), plus ``ingestion_report.json`` in the artifact folder.
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        input_base: str | data_types.RuntimeParameter,
        dataset_format: str,
        splits: Sequence[str] = ("train", "val"),
        strict: bool = False,
        require_examples: bool = False,
    ):
        """Builds the component.

        Args:
            input_base: VOC: the folder holding ``VOCdevkit``, ``VOCdevkit`` itself or ``VOC2012``.
                Cityscapes: the folder holding ``leftImg8bit`` and ``gtFine``. Or a str ``RuntimeParameter``
                (a compiled pipeline's input), checked by the executor as a remote folder is.
            dataset_format: ``voc`` (or ``pascal_voc``) or ``cityscapes``.
            splits: Splits to ingest: VOC list names (``train``, ``val``, ``trainval``, ``train_aug``)
                or Cityscapes folders (``train``, ``val``).
            strict: Fail on the first bad pair (an ``IngestionError`` naming file and reason) instead of
                quarantining it in the report; an empty split fails too.
            require_examples: Fail when a split lists nothing (at once, for a local folder) or yields no
                example (when the executor has run), so that a pipeline never trains or evaluates on nothing.

        Raises:
            IngestionError: For a local ``input_base`` not in the layout, or a missing list file or split
                folder (strict: also an unusable id or an empty split).
            ValueError: If the format or a split name is invalid, or no split is left to ingest.
        """
        dataset = datasets.dataset_name(dataset_format)
        kept, skipped = datasets.partition_splits(dataset, list(splits))
        for skipped_split in skipped:
            logger.warning("SegmentationExampleGen: split %r skipped: %s", skipped_split.name, skipped_split.reason)
        if not kept:
            raise ValueError(f"no split left to ingest (requested: {list(splits)})")

        list_digests: dict[str, str] = {}
        if isinstance(input_base, data_types.RuntimeParameter):
            root = input_base
        elif _is_remote(str(input_base)):
            root = str(input_base)
            logger.info("SegmentationExampleGen: %s is remote; it is taken to be the dataset root "
                        "(VOC: the VOC2012 folder) and checked when the executor runs", root)
        else:
            root = datasets.resolve_dataset_root(dataset, str(input_base))
            plans = [datasets.plan_split(dataset, root, split, strict=strict) for split in kept]
            for plan in plans:
                if require_examples and not plan.listed:
                    raise IngestionError(plan.source, empty_split_reason(plan.name, plan.source))
            if datasets.layout_of(dataset).SPLITS_LISTED_IN_FILES:
                list_digests = {plan.name: files.file_digest(plan.source) for plan in plans}

        self.dataset = dataset
        self.dataset_root = root
        self.split_names = tuple(kept)
        self.skipped_splits = tuple(skipped)
        options = executor.IngestionOptions(dataset, strict, tuple(skipped), list_digests, require_examples)
        super().__init__(
            input_base=root,
            input_config=example_gen_pb2.Input(splits=[
                example_gen_pb2.Input.Split(name=split, pattern=split_pattern(dataset, split)) for split in kept
            ]),
            custom_config=options.to_custom_config(),
        )
