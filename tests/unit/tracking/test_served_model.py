"""The pyfunc model file of a pushed model defines its class without MLflow's type-hint advice (printed into
every quiet `segpipe run` before: MLflow shows it under a warning filter of its own, so only a hint it
accepts keeps it away)."""

from __future__ import annotations

import importlib
import warnings

from components.tracking import served_model


def test_defining_the_pyfunc_model_warns_nothing():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.onceregistry.clear()  # MLflow shows the advice "once" per process: forget an earlier one
        importlib.reload(served_model)
    assert [str(warning.message) for warning in caught if "type hint" in str(warning.message).lower()] == []
