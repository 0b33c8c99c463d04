"""Fixtures of the command-line tests: `main()` changes process-wide logging state, put back after each test."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import pytest


@pytest.fixture(autouse=True)
def restore_logging_and_environment():
    """`main()` configures process-wide logging, warning filters, the unraisable hook and environment
    variables: put every one of them back afterwards, so no test after these runs muted."""
    environment = dict(os.environ)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logger_levels = {name: logging.getLogger(name).level
                     for name in ("tensorflow", "h5py", "matplotlib", "alembic", "urllib3", "mlflow")}
    unraisable_hook = sys.unraisablehook
    with warnings.catch_warnings():
        yield
    sys.unraisablehook = unraisable_hook
    for name, logger_level in logger_levels.items():
        logging.getLogger(name).setLevel(logger_level)
    os.environ.clear()
    os.environ.update(environment)
    root.handlers[:] = handlers
    root.setLevel(level)
