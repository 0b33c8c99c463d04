"""Beam pipeline arguments, assembled in one place for every runner and entry point.

Local runs (LocalDagRunner, `segpipe ingest`, the benchmarks) use Beam's DirectRunner; the Kubeflow
compiler gives its containers DirectRunner too (one pod per component). Which DirectRunner mode each
component gets was measured on 2 cores:
- the Evaluator runs in-memory: TFMA on multi-processing DirectRunner starts workers that each load the
  model again, while in-memory inference already uses every core through TensorFlow
  (benchmarks/bench_eval.py: 64 examples 5.4 s in-memory vs 12.2 s multi-processing, 256: 8.0 vs 14.0 s;
  1449: 16.5 vs 23.1 s);
- the ExampleGen (and `segpipe ingest`) runs multi-threaded: image decoding and zlib release the GIL, and
  no worker process has to start and import TensorFlow (benchmarks/bench_ingest.py, 4000 VOC-size pairs:
  9.2 s multi-threaded vs 16.4 s multi-processing; fixed cost 1.5 s vs 9.2 s);
- the other Beam components (StatisticsGen, Transform) take `runtime.beam_mode`.
"""

from __future__ import annotations

import os

from components.core.config import RuntimeConfig

EXAMPLE_GEN_ID = "SegmentationExampleGen"
EVALUATOR_ID = "Evaluator"

INGESTION_MODE = "multi_threading"
EVALUATION_MODE = "in_memory"

LOCAL_WORKER_ENVIRONMENT_FLAG = "--sdk_container_image=local-python-environment"
"""Without one of Beam's dependency flags, every TFX Beam executor builds and stages a ~50 MB source
package of TFX (2-3 s each, left in the temp folder) for remote workers. DirectRunner's workers run in
this environment and import the installed packages, so local runs name this environment's own
interpreter image, which DirectRunner ignores, and skip that build."""


def direct_runner_args(mode: str, workers: int = 0) -> list[str]:
    """DirectRunner options for a running mode; `workers` 0 means one per core (always 1 in-memory)."""
    count = 1 if mode == "in_memory" else workers or os.cpu_count() or 1
    return [f"--direct_running_mode={mode}", f"--direct_num_workers={count}"]


def ingestion_args(workers: int = 0) -> list[str]:
    """DirectRunner options for ingesting on this machine: multi-threaded, one thread per core.

    Used by `segpipe ingest` (unless given Beam options) and by local pipeline runs for the ExampleGen.
    """
    return direct_runner_args(INGESTION_MODE, workers)


def local_pipeline_args(runtime: RuntimeConfig) -> list[str]:
    """Pipeline-wide arguments of a local run: the configured mode, one worker per core by default."""
    return direct_runner_args(runtime.beam_mode, runtime.beam_workers) + [LOCAL_WORKER_ENVIRONMENT_FLAG]


def local_component_args(runtime: RuntimeConfig) -> dict[str, tuple[str, ...]]:
    """Per-component arguments of a local run; they follow (and so override) the pipeline-wide ones."""
    return {EVALUATOR_ID: tuple(direct_runner_args(EVALUATION_MODE)),
            EXAMPLE_GEN_ID: tuple(ingestion_args(runtime.beam_workers))}


def kubeflow_pipeline_args() -> list[str]:
    """Arguments of the Beam components in Kubeflow pods: DirectRunner, one process per core of the pod."""
    return ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"]
