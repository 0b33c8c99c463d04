"""Project-wide pytest fixtures: locating the real dataset samples in ``../shared/data``."""

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
