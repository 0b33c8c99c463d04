"""Headless Chromium (Debian's `chromium`) driven through the DevTools protocol, for UI tests.

One browser process per use: it listens for DevTools on 127.0.0.1 only, in a private profile folder;
the test navigates, waits for the rendered page to satisfy a JavaScript condition (the MLflow UI is a
JavaScript application: the first HTML holds nothing), reads text from the DOM, clicks, and saves
screenshots.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import websocket  # websocket-client

from tests.support.mlflow_server import stop_process


def chromium_binary() -> str | None:
    """The Chromium executable on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One browser tab, through its DevTools websocket."""

    def __init__(self, socket: websocket.WebSocket):
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params) -> dict:
        """Sends one DevTools command and returns its result (events in between are skipped)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._socket.recv())
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, condition: str, timeout_s: float = 60.0, what: str = "") -> None:
        """Polls the JavaScript `condition` until it is true.

        Raises:
            TimeoutError: naming `what` (or the condition) and the page's visible text at that point.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                if self.evaluate(condition):
                    return
            time.sleep(0.25)
        text = self.text()[:1500]
        raise TimeoutError(f"page never showed {what or condition} within {timeout_s:.0f} s; it shows: {text}")

    def text(self) -> str:
        """The page's visible text."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def html(self) -> str:
        """The rendered DOM as HTML."""
        return self.evaluate("document.documentElement.outerHTML") or ""

    def click(self, selector: str) -> None:
        """Clicks the middle of the first element matching the CSS `selector`, as a mouse would (menus
        that listen to pointer events open; a JavaScript `.click()` would not open them)."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null; "
                            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                            "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        if box is None:
            raise LookupError(f"no element matches {selector}")
        for event in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=event, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, path: Path) -> Path:
        """Saves a PNG of the viewport."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextlib.contextmanager
def chromium(profile_dir: Path, width: int = 1600, height: int = 1000, start_timeout_s: float = 30.0):
    """Starts headless Chromium with DevTools on 127.0.0.1; yields a :class:`Page`; stops it after."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    profile_dir.mkdir(parents=True, exist_ok=True)
    port_file = profile_dir / "DevToolsActivePort"
    port_file.unlink(missing_ok=True)  # a reused profile keeps the last browser's port
    log = open(profile_dir.parent / f"{profile_dir.name}.log", "w")
    process = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile_dir}",
         f"--window-size={width},{height}", "about:blank"],
        stdout=log, stderr=subprocess.STDOUT)
    socket = None
    try:
        deadline = time.monotonic() + start_timeout_s
        while not (port_file.is_file() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (see {log.name})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.load(response)
        page_target = next(target for target in targets if target["type"] == "page")
        socket = websocket.create_connection(page_target["webSocketDebuggerUrl"], timeout=60,
                                             suppress_origin=True)
        page = Page(socket)
        page.call("Page.enable")
        yield page
    finally:
        if socket is not None:
            socket.close()
        stop_process(process)
        log.close()
