"""`segpipe ui`: the MLflow UI (an `mlflow server`) on the default store of an output folder.

The store is the one a local run writes when no tracking server is configured: `<output>/mlflow.db`
(SQLite) with artifacts under `<output>/mlflow-artifacts/`. The server listens on 127.0.0.1 unless told
otherwise, and runs until interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from components.tracking.targets import local_artifact_location, local_tracking_uri


def ui_command(output_dir: str | os.PathLike[str], host: str, port: int) -> list[str]:
    """The `mlflow server` command line serving the store of `output_dir`.

    Raises:
        FileNotFoundError: the folder holds no MLflow store.
    """
    database = Path(output_dir).resolve() / "mlflow.db"
    if not database.is_file():
        raise FileNotFoundError(f"{database}: no MLflow store here (a `segpipe run --output {output_dir}` without a "
                                "tracking server writes one)")
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", local_tracking_uri(output_dir),
            "--default-artifact-root", local_artifact_location(output_dir), "--host", host, "--port", str(port),
            "--workers", "1"]


def wait_until_serving(process: subprocess.Popen, url: str, timeout_s: float) -> bool:
    """Polls `url`/health until it answers (True), the process exits or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve_ui(output_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 5000,
             start_timeout_s: float = 120.0) -> int:
    """Starts the server, prints its address once it answers, and waits for it (Ctrl-C or SIGTERM stops both).

    Returns:
        The exit code: 0 after an interrupt, 1 when the server failed to start or stopped by itself.
    """
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    signal.signal(signal.SIGTERM, _interrupt)  # a `kill` stops the server too, as Ctrl-C does
    server_log = tempfile.TemporaryFile(mode="w+")  # not a pipe: nobody reads it while the server runs
    process = subprocess.Popen(ui_command(output_dir, host, port), stdout=server_log, stderr=subprocess.STDOUT)
    try:
        if not wait_until_serving(process, url, start_timeout_s):
            process.terminate()
            process.wait(timeout=20)
            server_log.seek(0)
            error = server_log.read().strip().splitlines()
            reason = error[-1] if error else f"no answer within {start_timeout_s:.0f} s"
            print(f"segpipe: the MLflow UI did not start on {host}:{port}: {reason}", file=sys.stderr)
            return 1
        print(f"MLflow UI of {Path(output_dir).resolve()}: {url} (Ctrl-C stops it)", flush=True)
        print(f"Runs in the model-training view: {url}/#/experiments?workflowType=machine_learning", flush=True)
        process.wait()
        print(f"segpipe: the MLflow UI stopped (exit code {process.returncode})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        server_log.close()
