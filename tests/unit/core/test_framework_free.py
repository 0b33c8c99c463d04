"""The core modules stay framework-free: importing them loads no TensorFlow, TFX, Beam, MLflow or pyplot."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

FRAMEWORKS = {"tensorflow", "tf_keras", "keras", "tfx", "apache_beam", "mlflow"}
REPOSITORY = pathlib.Path(__file__).resolve().parents[3]
DATASETS_PACKAGE = REPOSITORY / "components" / "core" / "datasets"
DATASET_MODULES = ["components.core.datasets"] + [
    f"components.core.datasets.{path.stem}"
    for path in sorted(DATASETS_PACKAGE.glob("*.py")) if path.stem != "__init__"
]
"""The dataset layouts and everything they import: scoring and the synthetic generator use them."""


def _modules_loaded_by(module: str) -> set[str]:
    """The names in ``sys.modules`` after importing ``module`` in a fresh interpreter."""
    script = f"import sys, {module}; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=REPOSITORY)
    return set(result.stdout.split())


def _frameworks_in(loaded: set[str]) -> set[str]:
    return {name.split(".")[0] for name in loaded} & FRAMEWORKS


@pytest.mark.parametrize("module", ["components.core.label_maps", "components.core.sample_data",
                                    "components.core.metrics", "components.core.scoring",
                                    "components.core.reports"])
def test_core_module_imports_no_ml_framework(module):
    loaded = _modules_loaded_by(module)
    assert "numpy" in loaded
    assert not _frameworks_in(loaded)
    assert "matplotlib.pyplot" not in loaded


@pytest.mark.parametrize("module", DATASET_MODULES)
def test_dataset_layout_modules_import_no_ml_framework(module):
    loaded = _modules_loaded_by(module)
    assert module in loaded
    assert not _frameworks_in(loaded)
    assert "matplotlib.pyplot" not in loaded


def test_every_dataset_layout_module_is_checked():
    assert {"components.core.datasets.voc", "components.core.datasets.cityscapes"} <= set(DATASET_MODULES)
