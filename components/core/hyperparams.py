"""Typed configuration machinery: frozen dataclasses built from plain dicts, with errors naming the key.

In the spirit of TF Model Garden's ``hyperparams``: a configuration is a tree of frozen dataclasses
deriving from :class:`Config`. :func:`build` turns a nested dict (parsed YAML, or a TFX
``custom_config``) into that tree, coercing and checking every value against the field's type hint;
each class's ``validate`` checks its own values (and, for a parent, values across its children); every
problem is a :class:`ConfigError` whose message names the full dotted key. ``to_dict`` gives back a
JSON-able dict that :func:`build` turns into an equal config, so configuration has one definition.

Supported field types: ``bool``, ``int``, ``float``, ``str``, ``X | None``, ``tuple[X, ...]``,
``tuple[X, Y]`` and nested :class:`Config` subclasses.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Mapping, TypeVar

ConfigT = TypeVar("ConfigT", bound="Config")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


class FieldError(ValueError):
    """Raised by a ``validate`` method about one of its own fields; :func:`build` adds the key's path."""

    def __init__(self, key: str, message: str):
        super().__init__(f"'{key}' {message}")
        self.key = key
        self.message = message


def require(condition: bool, key: str, message: str) -> None:
    """Raises :class:`FieldError` for ``key`` (relative to the config being validated) unless ``condition``."""
    if not condition:
        raise FieldError(key, message)


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every configuration section: validation, dict round trip and flat names."""

    def validate(self) -> None:
        """Checks this section's values; raise :class:`FieldError` (see :func:`require`). Children are
        validated before their parent, so a parent may rely on them when checking across sections."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that ``type(self).from_dict`` turns back into an equal config."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls: type[ConfigT], values: Mapping[str, Any]) -> ConfigT:
        """Builds and validates a config from a (possibly partial) nested dict; missing keys take defaults."""
        return build(cls, values)

    def flat(self) -> dict[str, Any]:
        """``dotted.key -> value`` for every leaf, as logged to MLflow as run parameters."""
        return flatten(self.to_dict())

    def replace(self: ConfigT, **changes: Any) -> ConfigT:
        """A copy with some fields changed, validated again."""
        return build(type(self), {**self.to_dict(), **{key: _plain(value) for key, value in changes.items()}})


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> ``{"a.b.c": leaf}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def set_dotted(values: dict[str, Any], dotted_key: str, value: Any, where: str = "") -> None:
    """Sets ``values["a"]["b"]["c"] = value`` for ``dotted_key`` ``"a.b.c"``, creating mappings on the way.

    Raises:
        ConfigError: a part of the path exists and is not a mapping.
    """
    parts = dotted_key.split(".")
    node = values
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{where}'{'.'.join(parts[:depth + 1])}' must be a mapping to set '{dotted_key}'")
        node = child
    node[parts[-1]] = value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` applied: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build(cls: type[ConfigT], values: Mapping[str, Any], prefix: str = "") -> ConfigT:
    """Builds ``cls`` from ``values``, then validates it.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or a value ``validate`` rejects; the
            message names the full dotted key.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"'{prefix.rstrip('.') or 'config'}' must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown key '{prefix}{unknown[0]}' (known: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if _is_config(hint):
            kwargs[name] = build(hint, value if value is not None else {}, prefix=f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{prefix}{name}")
    config = cls(**kwargs)
    try:
        config.validate()
    except FieldError as error:
        raise ConfigError(f"'{prefix}{error.key}' {error.message}") from None
    return config


def _is_config(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Config)


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, Config) else value


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
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(item, args[0], key) for item in value)
        if len(value) != len(args):
            raise ConfigError(f"'{key}' must have {len(args)} items, got {value!r}")
        return tuple(_coerce(item, item_type, key) for item, item_type in zip(value, args))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{key}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{key}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{key}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"'{key}': unsupported type {hint}")
