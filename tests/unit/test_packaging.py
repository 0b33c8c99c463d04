"""The wheel (what the Kubeflow image installs) holds the schemas and configs, and loads label maps from them."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import zipfile

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def test_the_wheel_ships_schemas_label_maps_and_configs_and_loads_them_outside_the_checkout(tmp_path):
    # Built from a copy of the sources, so that setuptools' build/ folder is not left in the checkout
    # (nor a stale one from an earlier build read into this wheel).
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPOSITORY / name, source / name)
    for package in ("components", "pipeline", "schemas"):
        shutil.copytree(REPOSITORY / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(tmp_path / "wheel"), str(source)], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "wheel").glob("segpipe-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"schemas/__init__.py", "schemas/raw_schema.pbtxt", "schemas/label_maps/pascal_voc.json",
                "schemas/label_maps/cityscapes.json", "pipeline/configs/voc_unet.yaml",
                "pipeline/configs/base/voc.yaml", "components/core/label_maps.py"}
    assert expected <= names, sorted(expected - names)

    # Unpacked on its own (as site-packages would hold it), away from the checkout: the label maps and
    # the raw schema are found through the package, not through the repository layout.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = ("import components.core.label_maps as m; from pipeline.pipeline import raw_schema_path; "
              "print(m.schemas_dir()); print(m.load_label_map('cityscapes').num_classes); "
              "print(raw_schema_path().is_file())")
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); "
                             f"sys.path[:] = [p for p in sys.path if 'segpipe' not in p]; {script}"],
                            capture_output=True, text=True, check=True, cwd=tmp_path)
    folder, classes, schema_found = result.stdout.split()
    assert pathlib.Path(folder) == site / "schemas"
    assert (classes, schema_found) == ("19", "True")
