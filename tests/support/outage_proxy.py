"""A TCP proxy on 127.0.0.1 in front of a server that "goes away" at a chosen request: the first request
whose bytes hold a given marker (e.g. an MLflow REST path) is dropped, and from then on the proxy's port
refuses connections, as a stopped server's would. Used to stop a tracking server at an exact point."""

from __future__ import annotations

import contextlib
import socket
import threading


class OutageProxy:
    """Forwards 127.0.0.1:`port` to `target_port` until a client sends `marker`; then everything closes.

    Attributes:
        port: the proxy's port.
        cut: set once the marker was seen.
        forwarded_before_cut: how many client chunks went through before the cut.
    """

    def __init__(self, target_port: int, marker: bytes):
        self.target_port = target_port
        self.marker = marker
        self.cut = threading.Event()
        self.forwarded_before_cut = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if from_client and self.marker in data:
                    self.close()
                    return
                if from_client:
                    self.forwarded_before_cut += 1
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stops forwarding and listening (what a stopped server looks like to its clients)."""
        self.cut.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
