"""Beam pipeline arguments, assembled in one place for every runner and entry point.

The runner of a pipeline's Beam stages is the config's `runtime.beam` (`BeamConfig`): DirectRunner by
default, in the process for local runs (LocalDagRunner) and in each component's pod for compiled Kubeflow
pipelines, or another runner with its options (`runtime.beam.args`, passed after the runner's own
arguments, so they win); `segpipe ingest` and the benchmarks use DirectRunner unless given Beam options.
On DirectRunner, which running mode each component gets was measured on 2 cores:
- the Evaluator runs in-memory: TFMA on multi-processing DirectRunner starts workers that each load the
  model again, while in-memory inference already uses every core through TensorFlow
  (benchmarks/bench_eval.py: 64 examples 5.4 s in-memory vs 12.2 s multi-processing, 256: 8.0 vs 14.0 s;
  1449: 16.5 vs 23.1 s);
- the ExampleGen (and `segpipe ingest`) runs multi-threaded: image decoding and zlib release the GIL, and
  no worker process has to start and import TensorFlow (benchmarks/bench_ingest.py, 4000 VOC-size pairs:
  9.2 s multi-threaded vs 16.4 s multi-processing; fixed cost 1.5 s vs 9.2 s);
- the other Beam components (StatisticsGen, Transform) take `runtime.beam_mode`.

Loopback only. Beam's portable DirectRunner (FnApiRunner) starts gRPC servers for its workers (control,
data, state and logging, per worker handler; one more logging server per worker process in
multi-processing mode) with `add_insecure_port('[::]:0')`: every interface, although its workers are
threads or child processes of this machine that connect to `localhost:<port>`
(`apache_beam/runners/portability/fn_api_runner/worker_handlers.py`, `GrpcServer`;
`apache_beam/runners/portability/local_job_service.py`, `SubprocessSdkWorker`); and DirectRunner's
`start_and_replace_loopback_environments` starts an external worker pool on `[::]:0` too
(`apache_beam/runners/worker/worker_pool_main.py`, `BeamFnExternalWorkerPoolServicer.start`). No Beam
option chooses that address. `bind_local_beam_servers_to_loopback()` is the narrow adaptation local runs
install (`segpipe ingest` on DirectRunner, `segpipe run`): in those three modules only, a server's
any-interface address becomes `localhost` (127.0.0.1 and ::1). The worker processes open no server
(they are gRPC clients of these), and Kubeflow pods are left as Beam made them.
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
    """Pipeline-wide arguments of a local run. DirectRunner: the configured mode, one worker per core by
    default, and this environment as the workers' (no TFX package build); another runner: `--runner` and
    `runtime.beam.args` alone. `runtime.beam.args` come last."""
    if not runtime.beam.is_direct:
        return [f"--runner={runtime.beam.runner}", *runtime.beam.args]
    return direct_runner_args(runtime.beam_mode, runtime.beam_workers) + [LOCAL_WORKER_ENVIRONMENT_FLAG,
                                                                          *runtime.beam.args]


def local_component_args(runtime: RuntimeConfig) -> dict[str, tuple[str, ...]]:
    """Per-component arguments of a local run; they follow (and so override) the pipeline-wide ones.
    DirectRunner only (its running modes; `runtime.beam.args` still win); none on another runner."""
    if not runtime.beam.is_direct:
        return {}
    return {EVALUATOR_ID: tuple(direct_runner_args(EVALUATION_MODE)) + runtime.beam.args,
            EXAMPLE_GEN_ID: tuple(ingestion_args(runtime.beam_workers)) + runtime.beam.args}


def kubeflow_pipeline_args(runtime: RuntimeConfig) -> list[str]:
    """Arguments of the Beam components of a compiled Kubeflow pipeline. DirectRunner (the default): in
    each component's pod, in the configured mode with one worker per core of the pod unless
    `runtime.beam_workers` says otherwise; another runner: the pods submit their Beam jobs to it.
    `runtime.beam.args` come last."""
    if not runtime.beam.is_direct:
        return [f"--runner={runtime.beam.runner}", *runtime.beam.args]
    return [f"--runner={runtime.beam.runner}", f"--direct_running_mode={runtime.beam_mode}",
            f"--direct_num_workers={runtime.beam_workers}", *runtime.beam.args]


LOOPBACK_HOST = "localhost"
"""Where local Beam servers listen: gRPC binds every loopback address of the name (127.0.0.1, ::1)."""

_ANY_INTERFACE_HOSTS = ("[::]", "0.0.0.0", "*", "")


def loopback_address(address: str) -> str:
    """`address` (`host:port`) with an any-interface host (`[::]`, `0.0.0.0`, ...) replaced by `localhost`."""
    host, separator, port = address.rpartition(":")
    return f"{LOOPBACK_HOST}:{port}" if separator and host in _ANY_INTERFACE_HOSTS else address


class _LoopbackGrpc:
    """Stands for the `grpc` module inside one Beam module: `server()` returns servers whose
    any-interface ports are bound to loopback; every other name is grpc's own."""

    def __init__(self, grpc_module):
        self.wrapped = grpc_module

    def __getattr__(self, name: str):
        return getattr(self.wrapped, name)

    def server(self, *args, **kwargs):
        server = self.wrapped.server(*args, **kwargs)
        add_insecure_port = server.add_insecure_port
        server.add_insecure_port = lambda address: add_insecure_port(loopback_address(address))
        return server


def local_beam_server_modules() -> list:
    """The Beam modules whose servers local runs start (see the module docstring)."""
    from apache_beam.runners.portability import local_job_service  # pylint: disable=import-outside-toplevel
    from apache_beam.runners.portability.fn_api_runner import worker_handlers  # pylint: disable=import-outside-toplevel
    from apache_beam.runners.worker import worker_pool_main  # pylint: disable=import-outside-toplevel

    return [worker_handlers, local_job_service, worker_pool_main]


def bind_local_beam_servers_to_loopback() -> None:
    """Makes the gRPC servers of Beam's DirectRunner in this process listen on loopback only (idempotent).

    Local runs only: called by `segpipe ingest` (on DirectRunner) and by the local pipeline runner
    before anything runs. See the module docstring for where Beam binds and why this is enough.
    """
    for module in local_beam_server_modules():
        if not isinstance(module.grpc, _LoopbackGrpc):
            module.grpc = _LoopbackGrpc(module.grpc)


def is_local_runner(beam_pipeline_args: list[str] | tuple[str, ...]) -> bool:
    """Whether Beam arguments leave the runner to DirectRunner (no `--runner`, or a direct one)."""
    args = list(beam_pipeline_args)
    runners = [arg.split("=", 1)[1] if "=" in arg else (args[index + 1] if index + 1 < len(args) else "")
               for index, arg in enumerate(args) if arg == "--runner" or arg.startswith("--runner=")]
    return not runners or runners[-1].lower() in ("directrunner", "direct", "switchingdirectrunner", "fnapirunner")
