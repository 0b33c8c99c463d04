"""The core modules stay framework-free: importing them loads no TensorFlow, TFX, Beam, MLflow or pyplot."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

FRAMEWORKS = {"tensorflow", "tf_keras", "keras", "tfx", "apache_beam", "mlflow"}


def _modules_loaded_by_importing(module: str) -> set[str]:
    """The names in ``sys.modules`` after importing ``module`` in a fresh interpreter."""
    script = f"import sys, {module}; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=pathlib.Path(__file__).resolve().parents[3])
    return set(result.stdout.split())


@pytest.mark.parametrize("module", ["components.core.label_maps", "components.core.sample_data",
                                    "components.core.class_maps", "components.core.evaluation_result",
                                    "components.core.metrics", "components.core.hausdorff",
                                    "components.core.scoring", "components.core.reports"])
def test_core_module_imports_no_ml_framework(module):
    loaded = _modules_loaded_by_importing(module)
    assert "numpy" in loaded
    assert not {name.split(".")[0] for name in loaded} & FRAMEWORKS
    assert "matplotlib.pyplot" not in loaded


def test_the_evaluation_result_needs_numpy_only():
    """Adapters and reports load the result type without the metrics' OpenCV, scipy or Pillow."""
    loaded = {name.split(".")[0] for name in _modules_loaded_by_importing("components.core.evaluation_result")}
    assert "numpy" in loaded
    assert not loaded & ({"cv2", "scipy", "PIL", "matplotlib"} | FRAMEWORKS)
