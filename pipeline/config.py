"""Experiment files: YAML under `pipeline/configs/`, based on one another, with `--set` overrides.

An experiment file holds only what differs from the defaults of `components.core.config` (or from the
file it is based on): a top-level `base: other.yaml` (relative to the file) names a file whose values
are taken first, and the file's own values are merged over them key by key. `--set` overrides apply last
and reach a key at any depth (`model.deeplabv3plus.backbone.name=resnet50`). The result is parsed once
into a validated `PipelineConfig`; every unknown key and every bad value is a `ConfigError` naming the
file and the key, raised before anything runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from components.core.config import PipelineConfig
from components.core.hyperparams import ConfigError, deep_merge, set_dotted

__all__ = ["CONFIGS_DIR", "DEFAULT_CONFIG", "ConfigError", "PipelineConfig", "load_config", "read_config_file"]

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIGS_DIR / "voc_unet.yaml"
BASE_KEY = "base"
"""Top-level key of an experiment file naming the file it is based on."""


def read_config_file(path: str | os.PathLike[str], _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The values of an experiment file merged over those of the files it is based on.

    Raises:
        ConfigError: a file is missing, not YAML, not a mapping, or the `base` chain loops.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: '{BASE_KEY}' chain loops back to this file")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (expected YAML in UTF-8)") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if values is None:
        raise ConfigError(f"{path}: the file is empty (expected a mapping of sections)")
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    base = values.pop(BASE_KEY, None)
    if base is None:
        return values
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: '{BASE_KEY}' must name a YAML file, got {base!r}")
    return deep_merge(read_config_file(path.parent / base, _seen + (path.resolve(),)), values)


def load_config(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()) -> PipelineConfig:
    """Reads an experiment file (and its bases) and applies `dotted.key=value` overrides.

    Args:
        path: the YAML file.
        overrides: strings such as `training.epochs=2` or `model.unet.depth=4`; values are parsed as
            YAML scalars/lists.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: a file problem, an unknown key or a bad value; the message names the file and key.
    """
    values = read_config_file(path)
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        if not sep or "." not in key or "" in key.split("."):
            raise ConfigError(f"--set {override!r}: expected section.key=value")
        try:
            value = yaml.safe_load(raw_value) if raw_value else ""
        except yaml.YAMLError:
            raise ConfigError(f"--set {override!r}: the value is not valid YAML") from None
        set_dotted(values, key, value, where=f"{path}: ")
    try:
        return PipelineConfig.from_dict(values)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
