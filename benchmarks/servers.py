"""A gunicorn of our own for a benchmark or a test (or `feedserver serve`): started on a free
loopback port, waited for, its worker processes found through /proc, and stopped.

The tests' fixtures (tests/conftest.py) launch theirs with this module too; it needs nothing
beyond the standard library, so `python -m benchmarks` runs without pytest."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

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


class ServerExited(RuntimeError):
    """The server process ended before it answered."""


@dataclass
class GunicornServer:
    """A running gunicorn master (or `feedserver serve`) with its output in a file."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path  # what the server and the app wrote to stdout and stderr
    started: float  # time.perf_counter() at the launch
    access_log: Path | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT, no trailing slash."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """The master's process id."""
        return self.process.pid

    def workers(self) -> set[int]:
        """The worker processes alive now."""
        return children(self.pid)

    def wait_ready(
        self,
        path: str = "/healthz",
        timeout: float = 900.0,
        *,
        any_status: bool = False,
        probe_timeout: float | None = None,
    ) -> float:
        """Wait until path answers 200 (any status with any_status); returns the seconds since
        the launch. One probe waits probe_timeout seconds at most (default: all of timeout).
        Raises ServerExited if the server ends first, TimeoutError if it does not answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerExited(f"gunicorn exited with {self.process.returncode}: {self.tail()}")
            try:
                status, _, _ = get(self.port, path, timeout=probe_timeout or timeout)
                if status == 200 or any_status:
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

    def fetch(self, path: str, timeout: float = 10.0) -> tuple[int, Message, bytes]:
        """GET a path with urllib: (status, headers, body), for error statuses too."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def output(self) -> str:
        """What the server and the app wrote so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 15) -> str:
        """The end of the output."""
        try:
            return "\n".join(self.output().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the master (only the process this object started) and its workers: TERM,
        then KILL after 20 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def launch(
    command: list[str],
    port: int,
    log: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
) -> GunicornServer:
    """Run command (a server that will listen on port) in cwd (default: the repository's top
    folder) with exactly the environment env, its output going to log. Does not wait for it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd or REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return GunicornServer(process, port, log, time.perf_counter())


def start(
    app: str,
    logs: Path,
    *options: str,
    env: dict[str, str] | None = None,
    access_format: str | None = None,
) -> GunicornServer:
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


def start_serve(logs: Path, *options: str, env: dict[str, str] | None = None) -> GunicornServer:
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
) -> GunicornServer:
    # A load generator polls the same feeds unconditionally from one client: polite polling
    # would refuse it. The audience counts go beside the logs, not into the repository.
    settings = {
        "FEEDSERVER_POLITE_POLLING": "false",
        "FEEDSERVER_STATS_DB": str(logs / f"{name}-{port}-stats.sqlite3"),
        **(env or {}),
    }
    log = logs / f"{name}-{port}.err.log"
    server = launch(command, port, log, clean_environment(**settings))
    server.access_log = access_log
    return server
