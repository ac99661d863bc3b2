"""A gunicorn of our own for a benchmark (or `feedserver serve`): started on a free loopback
port, waited for, its worker processes found through /proc, and stopped."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .fresh import REPO_ROOT, clean_environment

HOST = "127.0.0.1"
# Loading 100,000 seeds in a worker takes longer than gunicorn's default 30 s timeout.
COMMON_OPTIONS = ("--timeout", "600", "--graceful-timeout", "5")


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """One GET over a fresh connection: status, headers and body."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def children(pid: int) -> set[int]:
    """The live processes whose parent is pid (gunicorn's workers, for its master)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


@dataclass
class Gunicorn:
    """A running gunicorn master with its logs in files."""

    process: subprocess.Popen[bytes]
    port: int
    error_log: Path
    access_log: Path | None
    started: float
    _handles: list[IO[bytes]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The master's process id."""
        return self.process.pid

    def workers(self) -> set[int]:
        """The worker processes alive now."""
        return children(self.pid)

    def wait_ready(self, path: str = "/healthz", timeout: float = 900.0) -> float:
        """Wait until path answers 200; returns the seconds since the launch."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}: {self.tail()}")
            try:
                status, _, _ = get(self.port, path, timeout=timeout)
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"gunicorn did not answer {path} within {timeout} s: {self.tail()}")

    def wait_workers(self, count: int, timeout: float = 60.0) -> set[int]:
        """Wait until the master has count workers; returns their ids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = self.workers()
            if len(workers) >= count:
                return workers
            time.sleep(0.02)
        raise TimeoutError(f"gunicorn has {len(self.workers())} workers, not {count}")

    def tail(self, lines: int = 15) -> str:
        """The end of the error log."""
        try:
            text = self.error_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the master and its workers (TERM, then KILL after 15 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for handle in self._handles:
            handle.close()


def start(
    app: str,
    logs: Path,
    *options: str,
    env: dict[str, str] | None = None,
    access_format: str | None = None,
) -> Gunicorn:
    """Launch `python -m gunicorn OPTIONS app` from the repository's top folder."""
    port = free_port()
    name = app.replace(":", "-").replace(".", "-")
    command = [sys.executable, "-m", "gunicorn", *COMMON_OPTIONS, *options]
    command += ["--bind", f"{HOST}:{port}"]
    access_log = None
    if access_format is not None:
        access_log = logs / f"{name}-{port}.access.log"
        command += ["--access-logfile", str(access_log), "--access-logformat", access_format]
    return _launch([*command, app], name, port, logs, env, access_log)


def start_serve(logs: Path, *options: str, env: dict[str, str] | None = None) -> Gunicorn:
    """Launch `python -m feedserver serve OPTIONS` (its own gunicorn) on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "feedserver", "serve", "--host", HOST, "--port", str(port)]
    return _launch([*command, *options], "feedserver-serve", port, logs, env, None)


def _launch(
    command: list[str],
    name: str,
    port: int,
    logs: Path,
    env: dict[str, str] | None,
    access_log: Path | None,
) -> Gunicorn:
    logs.mkdir(parents=True, exist_ok=True)
    error_log = logs / f"{name}-{port}.err.log"
    handle = open(error_log, "wb")  # noqa: SIM115 - closed by Gunicorn.stop
    # A load generator polls the same feeds unconditionally from one client: polite polling
    # would refuse it. The audience counts go beside the logs, not into the repository.
    settings = {
        "FEEDSERVER_POLITE_POLLING": "false",
        "FEEDSERVER_STATS_DB": str(logs / f"{name}-{port}-stats.sqlite3"),
        **(env or {}),
    }
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=clean_environment(**settings),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    return Gunicorn(process, port, error_log, access_log, time.perf_counter(), [handle])
