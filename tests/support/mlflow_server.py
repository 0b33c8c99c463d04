"""A real MLflow tracking server on 127.0.0.1 for tests: started in a subprocess, stopped after."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(workdir: Path, timeout_s: float = 120.0):
    """Runs `mlflow server` on loopback with a SQLite store and proxied artifacts under `workdir`.

    Yields:
        The tracking URI, e.g. http://127.0.0.1:PORT.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_loopback_port()
    log = open(workdir / "mlflow-server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
         "--artifacts-destination", str(workdir / "artifacts")],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {process.returncode}: "
                                   f"{(workdir / 'mlflow-server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow server did not answer on {uri} within {timeout_s} s")
            time.sleep(0.5)
        yield uri
    finally:
        stop_process(process)
        log.close()


def stop_process(process: subprocess.Popen, timeout_s: float = 20) -> None:
    """Terminates a server process a test started, and kills it if it has not ended within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
