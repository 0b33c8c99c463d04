"""Where MLflow runs go, and whether that server is there: no MLflow import, so that a run can check its
tracking server in a second, before TensorFlow, TFX and MLflow are loaded."""

from __future__ import annotations

import os
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from components.core.hyperparams import ConfigError

CONFIG_ORIGIN, ENV_ORIGIN = "runtime.mlflow_tracking_uri", "MLFLOW_TRACKING_URI"
"""The two settings that can name a tracking server."""


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go: `uri`, and which setting named it (`origin`: `runtime.mlflow_tracking_uri`,
    `MLFLOW_TRACKING_URI`, or "" for the default store in the output folder)."""

    uri: str
    origin: str = ""

    @property
    def is_server(self) -> bool:
        """Whether the URI names a tracking server (http or https), which may be away."""
        return urllib.parse.urlparse(self.uri).scheme in ("http", "https")


def local_tracking_uri(output_dir: str | os.PathLike[str]) -> str:
    """The default store of a local run: `sqlite:///<output_dir>/mlflow.db`."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


def local_artifact_location(output_dir: str | os.PathLike[str]) -> str:
    """The artifact root of the default store's experiments: `<output_dir>/mlflow-artifacts` as a file URI."""
    return (Path(output_dir).resolve() / "mlflow-artifacts").as_uri()


def resolve_tracking_target(configured: str, output_dir: str | os.PathLike[str]) -> TrackingTarget:
    """The configured URI, else the `MLFLOW_TRACKING_URI` environment variable, else the default store."""
    if configured:
        return TrackingTarget(configured, CONFIG_ORIGIN)
    if os.environ.get(ENV_ORIGIN):
        return TrackingTarget(os.environ[ENV_ORIGIN], ENV_ORIGIN)
    return TrackingTarget(local_tracking_uri(output_dir))


def check_reachable(tracking_uri: str, timeout: float = 5.0, origin: str = CONFIG_ORIGIN) -> None:
    """Checks that the server of an http(s) tracking URI accepts connections, in one short try, so that
    a run with an unreachable MLflow server stops before it starts instead of at its last step (where
    MLflow's client would retry for minutes). Other URIs (a SQLite or file store) are not checked.

    Raises:
        ConfigError: Naming the setting, the URI and why it cannot be reached.
    """
    parsed = urllib.parse.urlparse(tracking_uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            pass
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ConfigError(f"{origin} {tracking_uri}: MLflow server unreachable ({reason}); "
                          "nothing was run") from None


