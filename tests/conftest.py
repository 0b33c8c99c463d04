"""Project-wide pytest fixtures: the real dataset samples in ``../shared/data`` and reference evaluators."""

from __future__ import annotations

import os
import pathlib

import pytest

SHARED_DATA_DIR = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
"""Third-party VOC and Cityscapes samples kept beside the repository (never copied into it)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks every test that uses the ``shared_data`` fixture with the ``shared_data`` marker."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared_data)


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """Returns the folder of real dataset samples (see its README.md).

    Skips the test when the folder is absent, except under CI (``CI=true``), where it fails instead.
    """
    if not SHARED_DATA_DIR.is_dir():
        reason = f"shared dataset samples not found at {SHARED_DATA_DIR.resolve()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return SHARED_DATA_DIR.resolve()


@pytest.fixture(scope="session")
def cityscapes_evaluation():
    """cityscapesScripts' pixel-level evaluation module (the official Cityscapes IoU code).

    At import the module reads CITYSCAPES_DATASET and CITYSCAPES_EXPORT_DIR into its global ``args``
    (and raises ValueError when CITYSCAPES_EXPORT_DIR names a missing folder); it tries to import an
    optional Cython helper and falls back to numpy. The variables are cleared for the import only, and
    the tests never use the module's global ``args``: each builds its own.
    """
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("CITYSCAPES_DATASET", "CITYSCAPES_RESULTS", "CITYSCAPES_EXPORT_DIR"):
            patch.delenv(variable, raising=False)
        import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as evaluation
    return evaluation


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory):
    """Ingested examples, schema and transform graph of a tiny generated VOC dataset (32x32, 8 images)."""
    from tests.support.tiny_artifacts import build_tiny_artifacts

    return build_tiny_artifacts(tmp_path_factory.mktemp("tiny_artifacts"))


@pytest.fixture(scope="session")
def tiny_trained_model(tiny_artifacts, tmp_path_factory):
    """A tiny U-Net trained 4 steps by `run_fn` on `tiny_artifacts`: the Model artifact folder."""
    from tests.support.tiny_artifacts import train_tiny_model

    return train_tiny_model(tiny_artifacts, tmp_path_factory.mktemp("tiny_run_fn"))


@pytest.fixture(scope="session")
def tiny_tflite_export(tiny_artifacts, tiny_trained_model, tmp_path_factory):
    """The TFLiteExport executor's output for `tiny_trained_model` (artifact, folder, side JSON, model)."""
    from tests.support.tiny_artifacts import export_tiny_tflite_models

    return export_tiny_tflite_models(tiny_artifacts, tiny_trained_model, tmp_path_factory.mktemp("tflite_models"))
