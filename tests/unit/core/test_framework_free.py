"""The core modules stay framework-free: importing them loads no TensorFlow, TFX, Beam, MLflow or pyplot."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

FRAMEWORKS = {"tensorflow", "tf_keras", "keras", "tfx", "apache_beam", "mlflow"}


@pytest.mark.parametrize("module", ["components.core.label_maps", "components.core.sample_data",
                                    "components.core.class_maps", "components.core.metrics",
                                    "components.core.hausdorff", "components.core.scoring",
                                    "components.core.reports"])
def test_core_module_imports_no_ml_framework(module):
    script = f"import sys, {module}; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=pathlib.Path(__file__).resolve().parents[3])
    loaded = set(result.stdout.split())
    assert "numpy" in loaded
    assert not {name.split(".")[0] for name in loaded} & FRAMEWORKS
    assert "matplotlib.pyplot" not in loaded
