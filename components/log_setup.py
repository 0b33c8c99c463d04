"""Quiet, readable logs: TensorFlow, absl, gRPC and Beam noise off by default; `verbose` brings it back.

Must be called before TensorFlow is imported (the C++ log level is read from the environment at
import time); the settings are inherited by Beam's worker processes through the environment.
Progress stays visible: segpipe's own loggers at INFO, and TFX's "Component X is running/finished".
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import sys
import warnings
from typing import Iterator

QUIET_ENV = "SEGPIPE_QUIET"
"""Set to "1" by `configure_logging(verbose=False)`, so that Beam's worker processes, which never call
`configure_logging`, know to be quiet too (see `quiet_beam_worker`)."""

PROJECT_LOGGERS = ("components", "pipeline", "segpipe")
_TFX_PROGRESS_PREFIX = "Component "
# Warnings the stack emits on every healthy run; hidden unless --verbose.
_KNOWN_HARMLESS = (
    "ArtifactQuery.property_predicate is not supported.",  # TFX input resolution, every component
    "ContextQuery.property_predicate is not supported.",
    "If direct_num_workers is not equal to 1",  # Beam, TFMA's in-memory sub-pipelines
    "No semi_persistent_directory found",  # Beam workers (multi-processing), forwarded as warnings
    "Discarding unparseable args",
    "base run context None or new pipeline run context",  # TFX's partial run (`segpipe run --until`), first step
    # tf.Transform, from every Beam worker (multi-processing), for each analyzer of `preprocessing_fn`; its own
    # text says it is safe to ignore when every analyzer has a `name`, as all of segpipe's have. Forwarded from
    # a worker process it arrives as the worker's protobuf text, where the apostrophe of "node's" is escaped.
    "cache key varies on repeated tracing",
    # tf.data, when an unseeded Trainer reads its training data out of order on purpose (`trainer/data.py`):
    # TFXIO's dataset comes with `deterministic` True whatever its `sloppy_ordering`, and is changed to False.
    "Changing the value of option deterministic from True to False",
)


# A failing Beam DoFn is logged, with its traceback, by the worker (and forwarded by DirectRunner from
# worker processes) before the runner raises the same error to its caller, which reports it: hidden
# unless --verbose.
_RAISED_AGAIN = ("Error processing instruction", "[while running ")
_RAISED_AGAIN_LOGGERS = ("apache_beam.runners.common", "apache_beam.runners.worker.sdk_worker")


class _ProgressOnly(logging.Filter):
    """Lets through WARNING and above, segpipe's own records, and TFX's per-component progress."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(harmless in message for harmless in _KNOWN_HARMLESS):
            return False
        if record.levelno >= logging.ERROR and (
                record.name in _RAISED_AGAIN_LOGGERS or any(again in message for again in _RAISED_AGAIN)):
            return False
        if record.levelno >= logging.WARNING or record.name.split(".")[0] in PROJECT_LOGGERS:
            return True
        return message.startswith(_TFX_PROGRESS_PREFIX) and message.endswith(("is running.", "is finished."))


def _drop_tensorflow_finalizer_errors(unraisable) -> None:
    if "AtomicFunction.__del__" in repr(getattr(unraisable, "object", "")):
        return
    sys.__unraisablehook__(unraisable)


def hide_tensorflow_finalizer_errors() -> None:
    """Hides TensorFlow's harmless "Exception ignored in AtomicFunction.__del__" at interpreter exit."""
    sys.unraisablehook = _drop_tensorflow_finalizer_errors


def _print_except_to_stderr(*values, file=None, **options) -> None:
    if file is sys.stderr:
        return
    builtins.print(*values, file=file, **options)


def hide_beam_worker_tracebacks() -> None:
    """Quiet runs only: Beam's SDK harness (`apache_beam.runners.worker.sdk_worker`) prints the traceback
    of a failing bundle straight to stderr, besides logging it, before the runner raises the same error
    to its caller, which reports it. This shadows `print` in that one module (its only `print` is that
    one) in this process; the logged copy is filtered by `configure_logging`. Does nothing when the run
    is verbose or when the module is not loaded."""
    worker = sys.modules.get("apache_beam.runners.worker.sdk_worker")
    if os.environ.get(QUIET_ENV) == "1" and worker is not None:
        worker.print = _print_except_to_stderr


def quiet_beam_worker() -> None:
    """Called in the `setup` of segpipe's Beam DoFns: in a worker of a quiet run (a thread of this
    process or a worker process), hides TensorFlow's finalizer noise at exit as `configure_logging`
    does in the main process, and Beam's printed copy of a failing bundle's traceback
    (`hide_beam_worker_tracebacks`). Does nothing otherwise."""
    if os.environ.get(QUIET_ENV) == "1":
        hide_tensorflow_finalizer_errors()
        hide_beam_worker_tracebacks()


@contextlib.contextmanager
def native_stderr_hidden() -> Iterator[None]:
    """In quiet runs (`QUIET_ENV` = "1"), file descriptor 2 goes to /dev/null within the block; else nothing.

    For C++ code that logs through absl directly and ignores `TF_CPP_MIN_LOG_LEVEL` (TF 2.16's TFLite
    converter: "WARNING: All log messages before absl::InitializeLog()...", "W0000 ... Ignored
    output_format"). Python's own stderr writes go to the same descriptor, so keep the block to the noisy
    call: exceptions still propagate and are reported after it.
    """
    if os.environ.get(QUIET_ENV) != "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def configure_logging(verbose: bool = False) -> None:
    """Sets log levels and formats for the whole process (and, via the environment, its workers)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"
    os.environ.setdefault("GRPC_VERBOSITY", "INFO" if verbose else "ERROR")
    os.environ.setdefault("GLOG_minloglevel", "0" if verbose else "2")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ[QUIET_ENV] = "0" if verbose else "1"
    if not verbose:
        os.environ["PYTHONWARNINGS"] = "ignore"
        warnings.filterwarnings("ignore")
        hide_tensorflow_finalizer_errors()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(message)s", "%H:%M:%S"))
    if not verbose:
        handler.addFilter(_ProgressOnly())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if not verbose:
        for name in ("tensorflow", "h5py", "matplotlib", "alembic", "urllib3", "mlflow", "distributed"):
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.INFO)
        absl_logging.use_python_logging(quiet=True)
    except ImportError:
        pass
