"""Listing and reading dataset files through ``tf.io.gfile``: dataset roots may be local folders or any
filesystem TensorFlow knows (``gs://``...).

TensorFlow is imported on the first call, not with this module: the dataset layouts that list files
with these helpers also give folder names to scoring and to the synthetic generator, which stay
framework-free.
"""

from __future__ import annotations

import functools
import hashlib
import os
import posixpath
from typing import Any


@functools.cache
def _gfile() -> Any:
    """Returns ``tf.io.gfile``, importing TensorFlow on first use."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return tf.io.gfile


def join(*parts: str) -> str:
    """Joins path parts: with '/' for URLs (``gs://...``), with the local separator otherwise."""
    return posixpath.join(*parts) if "://" in parts[0] else os.path.join(*parts)


def isdir(path: str) -> bool:
    """Whether ``path`` is a folder."""
    return _gfile().isdir(path)


def exists(path: str) -> bool:
    """Whether ``path`` exists."""
    return _gfile().exists(path)


def listdir(path: str) -> list[str]:
    """The names of the entries of folder ``path`` (folders may end with '/' on some filesystems)."""
    return _gfile().listdir(path)


def glob(pattern: str) -> list[str]:
    """The paths matching a glob pattern."""
    return _gfile().glob(pattern)


def read_lines(path: str) -> list[str]:
    """The lines of a text file, without line endings and without a leading UTF-8 byte-order mark
    (which editors on Windows write, and which would otherwise become part of the first line)."""
    with _gfile().GFile(path, "r") as handle:
        text = handle.read()
    return text.removeprefix("\ufeff").splitlines()


def size(path: str) -> int:
    """The size of file ``path`` in bytes (-1 when it is missing)."""
    try:
        return int(_gfile().stat(path).length)
    except Exception:  # pylint: disable=broad-except  # tf.errors.NotFoundError, without importing tf here
        return -1


def file_digest(path: str) -> str:
    """Returns the SHA-256 hex digest of a file's bytes (used to key caches on VOC list contents)."""
    with _gfile().GFile(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()
