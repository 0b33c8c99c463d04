"""Watching the listening TCP sockets of a process tree (the loopback-only tests)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
from typing import Iterator

import psutil


def listening(root: psutil.Process) -> set[tuple[int, str, int]]:
    """(pid, address, port) of every listening TCP socket of `root` and its descendants."""
    found = set()
    try:
        processes = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return found
    for process in processes:
        try:
            connections = process.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        found.update((process.pid, connection.laddr.ip, connection.laddr.port)
                     for connection in connections if connection.status == psutil.CONN_LISTEN)
    return found


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, or 127.x mapped into IPv6 (a dual-stack socket bound to 127.0.0.1)."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


@contextlib.contextmanager
def watch_listening(pid: int | None = None, interval: float = 0.02) -> Iterator[set[tuple[int, str, int]]]:
    """Collects, in a background thread, every listening socket of process `pid` (default: this one)
    and its descendants while the block runs; the yielded set is complete when the block exits."""
    seen: set[tuple[int, str, int]] = set()
    stop = threading.Event()
    root = psutil.Process(pid or os.getpid())

    def poll() -> None:
        while not stop.is_set():
            seen.update(listening(root))
            stop.wait(interval)

    thread = threading.Thread(target=poll, name="watch-listening", daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()
        seen.update(listening(root))
