"""The core stays framework-free: no core module loads TFX, Beam or MLflow, and the numpy-only ones (label
maps, dataset layouts, metrics, scoring, reports, configuration) load no TensorFlow or pyplot either."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parents[3]
CORE = REPOSITORY / "components" / "core"
PIPELINE_FRAMEWORKS = {"tfx", "apache_beam", "mlflow"}
ML_FRAMEWORKS = {"tensorflow", "tf_keras", "keras"} | PIPELINE_FRAMEWORKS
EVERY_CORE_MODULE = sorted(
    ".".join(path.relative_to(REPOSITORY).with_suffix("").parts).removesuffix(".__init__")
    for path in CORE.rglob("*.py"))
NUMPY_ONLY = ["components.core.label_maps", "components.core.sample_data", "components.core.class_maps",
              "components.core.evaluation_result", "components.core.metrics", "components.core.hausdorff",
              "components.core.scoring", "components.core.reports"]
"""Modules usable without TensorFlow (`segpipe score`, reports, the synthetic generator)."""
STANDARD_LIBRARY_ONLY = ["components.core.config", "components.core.hyperparams", "components.core.datasets"] + [
    f"components.core.datasets.{path.stem}" for path in sorted((CORE / "datasets").glob("*.py"))
    if path.stem != "__init__"]
"""Modules the command line and the dataset layouts load before anything heavy."""


def _modules_loaded_by(module: str) -> set[str]:
    """The top-level package names in ``sys.modules`` after importing ``module`` in a fresh interpreter."""
    script = f"import sys, {module}; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=REPOSITORY)
    return {name.split(".")[0] for name in result.stdout.split()} | set(result.stdout.split())


def test_the_lists_name_real_modules():
    assert set(NUMPY_ONLY + STANDARD_LIBRARY_ONLY) <= set(EVERY_CORE_MODULE)
    assert {"components.core.datasets.voc", "components.core.datasets.cityscapes"} <= set(STANDARD_LIBRARY_ONLY)


def test_no_core_module_imports_tfx_beam_or_mlflow():
    """One interpreter imports every core module in turn and notes what each one's import added: a module
    that loads TFX, Beam or MLflow (itself or through another) is the first whose import adds it."""
    script = ("import importlib, json, sys\n"
              "added = {}\n"
              f"for name in {EVERY_CORE_MODULE!r}:\n"
              "    before = set(sys.modules)\n"
              "    importlib.import_module(name)\n"
              "    added[name] = sorted({m.split('.')[0] for m in set(sys.modules) - before})\n"
              "print(json.dumps(added))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=REPOSITORY)
    added = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(added) == set(EVERY_CORE_MODULE)
    offenders = {module: sorted(set(names) & PIPELINE_FRAMEWORKS) for module, names in added.items()
                 if set(names) & PIPELINE_FRAMEWORKS}
    assert not offenders


@pytest.mark.parametrize("module", NUMPY_ONLY)
def test_numpy_only_modules_import_no_ml_framework(module):
    loaded = _modules_loaded_by(module)
    assert "numpy" in loaded
    assert not loaded & ML_FRAMEWORKS
    assert "matplotlib.pyplot" not in loaded


@pytest.mark.parametrize("module", STANDARD_LIBRARY_ONLY)
def test_configuration_and_layout_modules_import_no_ml_framework(module):
    assert not _modules_loaded_by(module) & (ML_FRAMEWORKS | {"cv2", "PIL", "matplotlib"})


def test_the_evaluation_result_needs_numpy_only():
    """Adapters and reports load the result type without the metrics' OpenCV, scipy or Pillow."""
    loaded = _modules_loaded_by("components.core.evaluation_result")
    assert "numpy" in loaded
    assert not loaded & ({"cv2", "scipy", "PIL", "matplotlib"} | ML_FRAMEWORKS)
