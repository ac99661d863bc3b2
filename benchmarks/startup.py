"""Start-up under `gunicorn --preload -w 4`: how often the seeds are parsed in full, and how
soon a worker killed with SIGKILL is serving again.

Each reload logs one line (`reload: files=N parsed=M ...`, logger feedserver.store, with the
process id); a full parse is a line with parsed equal to files. The worker is killed once the
master's catalog is older than the reload interval, as in a server that has run for a while,
so the new worker catches up (reloads) with its first request, as it would in production.
Probes (`GET /healthz?probe=<n>`, each on a fresh connection, from four threads so that busy
old workers leave room for the new one) run until the access log, which records the worker
pid of each probe, shows one answered by the new worker; the figure is the time from the kill
to the moment that probe's answer arrived.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import servers

WORKERS = 4
# The default interval; the kill waits until the master's catalog is older than this, so the
# new worker catches up first, as one would in a server that has run for a while.
RELOAD_INTERVAL = 60
ACCESS_FORMAT = "%(p)s %(U)s %(q)s %(s)s"
_RELOAD_LINE = re.compile(r"\[(\d+)\].*reload: files=(\d+) parsed=(\d+).*?duration=([\d.]+)s")


@dataclass(frozen=True, slots=True)
class Reload:
    """One reload line of the log."""

    pid: int
    files: int
    parsed: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Startup:
    """What the start-up run saw."""

    ready_seconds: float  # launch to the first answer of /healthz
    reloads: tuple[Reload, ...]
    master: int
    respawn_seconds: float  # kill to a new worker process existing
    back_seconds: float  # kill to the new worker's first answer
    new_worker_reloads: tuple[Reload, ...]
    new_worker_slowest: float  # the slowest probe it answered until its catch-up was done

    def full_parses(self, files: int) -> int:
        """How many reloads parsed every one of `files` files."""
        return sum(1 for r in self.reloads if r.files == files and r.parsed == files)


def _reloads(log: Path) -> tuple[Reload, ...]:
    text = log.read_text(encoding="utf-8", errors="replace")
    return tuple(
        Reload(int(m[1]), int(m[2]), int(m[3]), float(m[4])) for m in _RELOAD_LINE.finditer(text)
    )


def _served_by(log: Path, pids: set[int]) -> set[int]:
    """The probe numbers that the given worker processes answered."""
    probes = set()
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()  # gunicorn writes the pid as <1234>
        pid = parts[0].strip("<>") if parts else ""
        if len(parts) >= 3 and pid.isdigit() and int(pid) in pids:
            match = re.search(r"probe=(\d+)", parts[2])
            if match:
                probes.add(int(match.group(1)))
    return probes


class _Prober:
    """Threads that send numbered probes and note when each answer arrived."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.port = port
        self.answered: dict[int, tuple[float, float]] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                number = self._next
                self._next += 1
            sent = time.perf_counter()
            try:
                status, _, _ = servers.get(self.port, f"/healthz?probe={number}", timeout=60)
            except (OSError, http.client.HTTPException):
                continue
            if status == 200:
                with self._lock:
                    self.answered[number] = (sent, time.perf_counter())

    def finished(self, number: int) -> float | None:
        """When the answer to a probe arrived, if it did."""
        with self._lock:
            times = self.answered.get(number)
        return times[1] if times else None

    def latency(self, number: int) -> float:
        """How long a probe waited for its answer (0 if it got none)."""
        with self._lock:
            sent, answered = self.answered.get(number, (0.0, 0.0))
        return answered - sent

    def __enter__(self) -> _Prober:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def measure(seeds: Path, logs: Path, timeout: float = 60.0) -> Startup:
    """Start gunicorn --preload -w 4, kill a worker once warm, and time its replacement."""
    server = servers.start(
        "wsgi:app",
        logs,
        "--preload",
        "--workers",
        str(WORKERS),
        env={
            "FEEDSERVER_SEEDS_DIR": str(seeds),
            "FEEDSERVER_BASE_URL": "http://feeds.bench",
            "FEEDSERVER_RELOAD_INTERVAL": str(RELOAD_INTERVAL),
        },
        access_format=ACCESS_FORMAT,
    )
    try:
        ready = server.wait_ready()
        old = server.wait_workers(WORKERS)
        time.sleep(max(0.0, RELOAD_INTERVAL + 2 - (time.perf_counter() - server.started)))
        assert server.access_log is not None
        with _Prober(server.port) as prober:
            time.sleep(0.2)  # probes flowing before the kill
            killed = time.perf_counter()
            os.kill(min(old), signal.SIGKILL)
            respawned, new, back = _wait_for_new_worker(server, old, prober, killed + timeout)
            # The new worker may catch up in the background after its first answer: wait
            # (probing on) for its reload line, to report what it cost and how slow the
            # worker's answers were meanwhile.
            reloads = _reloads(server.log)
            while time.perf_counter() < killed + timeout:
                if any(r.pid in new for r in reloads):
                    break
                time.sleep(0.05)
                reloads = _reloads(server.log)
            time.sleep(0.2)
        slowest = max(prober.latency(p) for p in _served_by(server.access_log, new))
    finally:
        server.stop()
    return Startup(
        ready_seconds=ready,
        reloads=reloads,
        master=server.pid,
        respawn_seconds=respawned - killed,
        back_seconds=back - killed,
        new_worker_reloads=tuple(r for r in reloads if r.pid in new),
        new_worker_slowest=slowest,
    )


def _wait_for_new_worker(
    server: servers.GunicornServer, old: set[int], prober: _Prober, deadline: float
) -> tuple[float, set[int], float]:
    """When a new worker appeared, its pid, and when its first answer arrived."""
    respawned: float | None = None
    new: set[int] = set()
    while time.perf_counter() < deadline:
        if respawned is None:
            new = server.workers() - old
            if new:
                respawned = time.perf_counter()
        if respawned is not None:
            assert server.access_log is not None
            answers = [prober.finished(p) for p in _served_by(server.access_log, new)]
            if any(answers):
                return respawned, new, min(a for a in answers if a)
        time.sleep(0.002)
    raise TimeoutError("no answer from a new worker in time")
