"""Beam's Dask runner on this machine: recognising it in Beam arguments, and the local cluster it runs on.

`apache_beam.runners.dask.dask_runner.DaskRunner` (Beam 2.74) connects to the scheduler named by
`--dask_client_address`; without it, it calls `distributed.Client()`, which starts a `LocalCluster` with
its defaults: one worker process per core (several threads each) and the diagnostics dashboard on port
8787 of every interface. segpipe starts the cluster itself instead (:func:`local_dask_cluster`): worker
processes with one thread each, every server (scheduler, nannies, workers) bound to 127.0.0.1, no
dashboard, and everything closed when the Beam pipeline ends (Beam never closes its client: left open, it
tries to reconnect to a closed scheduler for 30 s and logs an error).

What the runner can run, and what it cannot, is in :mod:`components.example_gen.ingest` and the README.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator, Sequence

logger = logging.getLogger(__name__)

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
"""The Dask runner's full class name, as `--runner` takes it (TFX passes it to Beam unchanged)."""

LOCAL_HOST = "127.0.0.1"

LOCAL_WORKERS_OPTION = "dask_local_workers"
"""segpipe's own option (`--dask_local_workers=N`, given with the Beam arguments): worker processes of the
local cluster; default one per core. Consumed by :func:`local_dask_cluster`, never passed to Beam."""


def _option_values(args: Sequence[str], name: str) -> list[str]:
    """Every value given to Beam option `--name` in `args` (`--name=value` or `--name value`)."""
    values = []
    for index, arg in enumerate(args):
        if arg.startswith(f"--{name}="):
            values.append(arg.split("=", 1)[1])
        elif arg == f"--{name}" and index + 1 < len(args):
            values.append(args[index + 1])
    return values


def runner_name(args: Sequence[str]) -> str:
    """The runner Beam arguments choose (the last `--runner`), or "" when they leave it to DirectRunner."""
    runners = _option_values(args, "runner")
    return runners[-1] if runners else ""


def is_dask_runner(args: Sequence[str]) -> bool:
    """Whether Beam arguments choose Beam's Dask runner (Beam knows it by its full class name only)."""
    return runner_name(args) == DASK_RUNNER


def _close_clients_of(address: str) -> None:
    """Closes the `distributed` clients of this process connected to `address` (Beam's, left open)."""
    from distributed.client import _global_clients  # pylint: disable=import-outside-toplevel

    for client in list(_global_clients.values()):
        if client.scheduler is not None and client.scheduler.address == address:
            client.close()


@contextlib.contextmanager
def local_dask_cluster(args: Sequence[str], default_partitions: int = 0) -> Iterator[list[str]]:
    """Yields the Beam arguments to run with; on the Dask runner, first starts a local cluster for them.

    Arguments that do not choose the Dask runner, or that name a scheduler (`--dask_client_address`,
    `--dask_scheduler_file`), are yielded unchanged and nothing is started. Otherwise a
    `distributed.LocalCluster` of `--dask_local_workers` processes (default: one per core; one thread
    each) listening on 127.0.0.1 only is
    started, `--dask_client_address` pointing at it is appended, and on exit the client Beam opened and
    the cluster (its processes included) are closed, whatever happened inside.

    Args:
        args: Beam pipeline arguments (with segpipe's `--dask_local_workers=N`, removed here).
        default_partitions: When > 0 and the arguments set neither `--dask_npartitions` nor
            `--dask_partition_size`, `--dask_npartitions` is set to it (the runner otherwise puts up to
            128 elements of a `Create` into one partition, i.e. one task on one worker).
    """
    workers = _option_values(args, LOCAL_WORKERS_OPTION)
    args = [arg for arg in args if not arg.startswith(f"--{LOCAL_WORKERS_OPTION}=")]
    if not is_dask_runner(args):
        yield args
        return
    if default_partitions > 0 and not (_option_values(args, "dask_npartitions")
                                       or _option_values(args, "dask_partition_size")):
        args.append(f"--dask_npartitions={default_partitions}")
    if _option_values(args, "dask_client_address") or _option_values(args, "dask_scheduler_file"):
        yield args
        return
    from distributed import LocalCluster  # pylint: disable=import-outside-toplevel

    try:
        count = int(workers[-1]) if workers else os.cpu_count() or 1
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"--{LOCAL_WORKERS_OPTION}: expected a number of worker processes >= 1, got {workers[-1]!r}")
    with LocalCluster(n_workers=count, threads_per_worker=1, processes=True, host=LOCAL_HOST,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        address = cluster.scheduler_address
        logger.info("Dask: started a local cluster of %d worker processes at %s", count, address)
        try:
            yield args + [f"--dask_client_address={address}"]
        finally:
            _close_clients_of(address)
    logger.info("Dask: closed the local cluster at %s", address)
