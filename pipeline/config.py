"""Typed pipeline configuration: frozen dataclasses read from YAML, with `key=value` overrides.

A YAML experiment file under `pipeline/configs/` is parsed once into a `PipelineConfig`. Every
unknown key and every bad value is a `ConfigError` naming the key, raised before anything runs.
Components receive the parts they need as JSON-able dicts (`to_dict`) and turn them back into the
same dataclasses (`from_dict`), so configuration has one definition.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIGS_DIR / "voc_unet.yaml"


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names the key."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split.

    Attributes:
        format: dataset layout, "voc" or "cityscapes".
        data_dir: root of the unpacked dataset; empty means "generate synthetic data".
        splits: list files / folders to ingest; the first is trained on, the second evaluated.
        strict: stop at the first bad image/mask pair instead of quarantining it.
        synthetic_images: how many images `make run` generates when `data_dir` is empty.
        synthetic_size: (width, height) of generated images.
        seed: seed of the synthetic generator.
    """

    format: str = "voc"
    data_dir: str = ""
    splits: tuple[str, ...] = ("train", "val")
    strict: bool = False
    synthetic_images: int = 48
    synthetic_size: tuple[int, int] = (64, 64)
    seed: int = 0

    def validate(self) -> None:
        _require(self.format in ("voc", "cityscapes"), "data.format", "must be 'voc' or 'cityscapes'")
        _require(len(self.splits) == 2 and len(set(self.splits)) == 2, "data.splits",
                 "must name two different splits: [train_split, eval_split]")
        _require(self.synthetic_images >= 4, "data.synthetic_images", "must be at least 4")
        _require(len(self.synthetic_size) == 2 and min(self.synthetic_size) >= 16,
                 "data.synthetic_size", "must be [width, height], each at least 16")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which network to build.

    Attributes:
        architecture: "unet".
        image_size: (height, width) the model sees; tf.Transform resizes to it.
        base_filters: filters of the first U-Net stage (doubled at each level).
        depth: number of down-sampling stages.
        weights: pretrained-weights path or None (nothing is downloaded at run time).
    """

    architecture: str = "unet"
    image_size: tuple[int, int] = (64, 64)
    base_filters: int = 16
    depth: int = 3
    weights: str | None = None

    def validate(self) -> None:
        _require(self.architecture in ("unet",), "model.architecture", "must be 'unet'")
        _require(len(self.image_size) == 2 and all(s % (2 ** self.depth) == 0 for s in self.image_size),
                 "model.image_size", f"must be [height, width], each divisible by 2**depth = {2 ** self.depth}")
        _require(self.base_filters >= 1, "model.base_filters", "must be positive")
        _require(1 <= self.depth <= 6, "model.depth", "must be between 1 and 6")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How the Trainer trains.

    Attributes:
        epochs: passes over `steps_per_epoch` batches.
        steps_per_epoch: training steps per epoch.
        batch_size: global batch size (split across replicas).
        learning_rate: peak Adam learning rate (cosine decay to zero over all steps).
        eval_steps: validation steps after each epoch.
    """

    epochs: int = 8
    steps_per_epoch: int = 30
    batch_size: int = 8
    learning_rate: float = 3e-3
    eval_steps: int = 4

    def validate(self) -> None:
        for key in ("epochs", "steps_per_epoch", "batch_size", "eval_steps"):
            _require(getattr(self, key) >= 1, f"training.{key}", "must be at least 1")
        _require(self.learning_rate > 0, "training.learning_rate", "must be positive")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """How the Evaluator blesses a model.

    Attributes:
        miou_threshold: the candidate's mIoU must be at least this.
        miou_max_drop: the candidate may fall at most this far below the last blessed model.
    """

    miou_threshold: float = 0.3
    miou_max_drop: float = 0.01

    def validate(self) -> None:
        _require(0.0 <= self.miou_threshold <= 1.0, "evaluation.miou_threshold", "must be in [0, 1]")
        _require(self.miou_max_drop >= 0.0, "evaluation.miou_max_drop", "must be non-negative")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Where and how the pipeline runs.

    Attributes:
        pipeline_name: name of the TFX pipeline (and of the MLflow experiment).
        beam_mode: DirectRunner running mode of the Beam components ("multi_processing",
            "multi_threading" or "in_memory"); local runs keep the ExampleGen multi-threaded and the
            Evaluator in-memory, the modes measured fastest for them (see `pipeline.local_runner`).
        beam_workers: DirectRunner workers; 0 means one per core.
        enable_cache: reuse TFX results of unchanged inputs.
        mlflow_tracking_uri: MLflow store; empty means a SQLite file in the output folder.
        mlflow_experiment: experiment name; empty means the pipeline name.
    """

    pipeline_name: str = "segpipe"
    beam_mode: str = "multi_processing"
    beam_workers: int = 0
    enable_cache: bool = False
    mlflow_tracking_uri: str = ""
    mlflow_experiment: str = ""

    def validate(self) -> None:
        _require(self.beam_mode in ("multi_processing", "in_memory", "multi_threading"),
                 "runtime.beam_mode", "must be 'multi_processing', 'multi_threading' or 'in_memory'")
        _require(self.beam_workers >= 0, "runtime.beam_workers", "must be 0 (one per core) or more")
        _require(re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", self.pipeline_name) is not None,
                 "runtime.pipeline_name", "must be lower-case letters, digits and '-' (as Kubeflow requires)")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The whole experiment: one YAML file."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

    def validate(self) -> "PipelineConfig":
        for section in dataclasses.fields(self):
            getattr(self, section.name).validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that `PipelineConfig.from_dict` turns back into an equal config."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "PipelineConfig":
        return _build(cls, values, prefix="").validate()

    def flat(self) -> dict[str, Any]:
        """`section.key -> value`, as logged to MLflow as run parameters."""
        return {f"{section}.{key}": value
                for section, fields in self.to_dict().items() for key, value in fields.items()}


def load_config(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()) -> PipelineConfig:
    """Reads a YAML experiment file and applies `section.key=value` overrides.

    Args:
        path: the YAML file.
        overrides: strings such as `training.epochs=2`; values are parsed as YAML scalars/lists.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file is missing or not a mapping, a key is unknown, or a value is bad.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {override!r}: expected section.key=value")
        section, field = key.split(".", 1)
        values.setdefault(section, {})
        if not isinstance(values[section], dict):
            raise ConfigError(f"{path}: section '{section}' must be a mapping")
        values[section][field] = yaml.safe_load(raw_value) if raw_value else ""
    try:
        return PipelineConfig.from_dict(values)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _build(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"'{prefix.rstrip('.') or 'config'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown key '{prefix}{unknown[0]}' (known: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value or {}, prefix=f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [arg for arg in args if arg is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{key}' must be a list, got {value!r}")
        item_type = args[0]
        if len(args) != 2 or args[1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"'{key}' must have {len(args)} items, got {value!r}")
        return tuple(_coerce(item, item_type, key) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{key}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{key}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{key}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"'{key}': unsupported type {hint}")


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"'{key}' {message}")
