"""Slow clients against a real gunicorn started the README's way (config/gunicorn.conf.py,
gevent workers): connections that trickle header lines and never finish their request do not
keep anyone else from being served, and none of them is held open for ever."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from feedserver.worker import KEEPALIVE, WORKER_CLASS

from .conftest import ROOT, GunicornServer

GUNICORN_CONF = str(ROOT / "config" / "gunicorn.conf.py")
SLOW_CONNECTIONS = 50
PROBES = 20
PROBE_DEADLINE = 20.0  # seconds for each probe request: generous for a loaded machine
LINE_PAUSE = 1.0  # a slow client sends one header line this often


def _port(server: GunicornServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


class SlowClients:
    """Connections that send a request head one header line at a time, never ending it,
    and open a new connection whenever the server closes one."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(b"GET /feed.rss HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        return sock

    def _run(self) -> None:
        connections = [self._connect() for _ in range(self.count)]
        line = 0
        while not self._stop.wait(LINE_PAUSE):
            line += 1
            for index, sock in enumerate(connections):
                try:
                    sock.sendall(f"X-Slow-{line}: {'x' * 20}\r\n".encode())
                except OSError:
                    self.closed_by_server += 1
                    sock.close()
                    connections[index] = self._connect()
        for sock in connections:
            sock.close()

    def __enter__(self) -> SlowClients:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def server(start_gunicorn: Callable[..., GunicornServer], seeds_dir: Path) -> GunicornServer:
    return start_gunicorn(seeds_dir, "-c", GUNICORN_CONF)


@pytest.fixture
def slow_clients(server: GunicornServer) -> Iterator[SlowClients]:
    with SlowClients(_port(server), SLOW_CONNECTIONS) as clients:
        yield clients


def test_the_readme_command_runs_the_gevent_worker(server: GunicornServer) -> None:
    assert f"Using worker: {WORKER_CLASS}" in server.output()
    # Reloads never run on a worker's event loop: the master reloads for every worker (in a
    # thread of its own), and each worker follows it.
    deadline = time.monotonic() + 30
    while server.output().count("serves the master's catalog and follows its reloads") < 2:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)
    assert "reload scheduler started in process" in server.output()
    assert "gevent: reloads run in a thread of its pool" not in server.output()


def test_probe_is_served_while_slow_clients_hold_connections(
    server: GunicornServer, slow_clients: SlowClients
) -> None:
    time.sleep(2 * LINE_PAUSE)  # every slow connection is open and trickling
    for _ in range(PROBES):
        status, _, body = server.fetch("/feed.rss", timeout=PROBE_DEADLINE)
        assert status == 200
        assert b"<rss" in body
    assert "Traceback" not in server.output()


def test_a_request_head_that_never_ends_is_cut_off(server: GunicornServer) -> None:
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=5) as sock:
        sock.sendall(b"GET /feed.rss HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        deadline = time.monotonic() + KEEPALIVE + 60
        closed = False
        line = 0
        while time.monotonic() < deadline and not closed:
            time.sleep(LINE_PAUSE)
            line += 1
            try:
                sock.sendall(f"X-Slow-{line}: x\r\n".encode())
            except OSError:
                closed = True
        assert closed, "the server kept a never-ending request head open"
