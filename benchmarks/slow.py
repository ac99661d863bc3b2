"""Serving under adverse conditions: a probe's requests while hundreds of slow clients hold
connections, and a cached feed's latency while a reload of changed files runs.

Slow clients are run from a separate process (asyncio): each opens a connection, sends a
request line and then one header line every LINE_PAUSE seconds, never ending the request, and
opens a new connection whenever the server closes one, as an attacker (or a crowd of phones
on a bad network) would. The probe is a plain client in this process, asking one request at
a time on a fresh connection; a request that fails or takes longer than PROBE_TIMEOUT counts
as failed. All traffic goes to 127.0.0.1, bounded in connections and in time."""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

from . import servers, trees

LINE_PAUSE = 2.0  # seconds between a slow client's header lines
PROBE_TIMEOUT = 5.0  # a probe request slower than this counts as failed
PROBE_PAUSE = 0.01  # seconds between probe requests
PROBE_PATH = "/feed.rss"
# Descriptors this process and the slow clients' process need besides the slow connections.
SPARE_DESCRIPTORS = 256


@dataclass(frozen=True, slots=True)
class Probe:
    """What a probe saw: how many of its requests succeeded, and how fast."""

    attempts: int
    succeeded: int
    latencies: list[tuple[float, float]]  # (wall-clock start, seconds), failures at the limit

    @property
    def success_rate(self) -> float:
        """The share of requests answered 200 within PROBE_TIMEOUT."""
        return self.succeeded / self.attempts if self.attempts else 0.0

    def p99(self) -> float:
        """The 99th percentile latency, failed requests counted at PROBE_TIMEOUT."""
        return percentile([seconds for _, seconds in self.latencies], 0.99)


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of values lie (nearest rank); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def probe(port: int, seconds: float, path: str = PROBE_PATH) -> Probe:
    """Ask for path one request at a time for `seconds`."""
    latencies: list[tuple[float, float]] = []
    succeeded = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started_wall, started = time.time(), time.perf_counter()
        try:
            status, _, _ = servers.get(port, path, timeout=PROBE_TIMEOUT)
            ok = status == 200
        except OSError:
            ok = False
        took = time.perf_counter() - started
        if ok and took <= PROBE_TIMEOUT:
            succeeded += 1
            latencies.append((started_wall, took))
        else:
            latencies.append((started_wall, max(took, PROBE_TIMEOUT)))
        time.sleep(PROBE_PAUSE)
    return Probe(len(latencies), succeeded, latencies)


async def _slow_connection(port: int, number: int, stop: asyncio.Event, counts: list[int]) -> None:
    line = 0
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(servers.HOST, port)
        except OSError:
            counts[1] += 1
            await asyncio.sleep(LINE_PAUSE)
            continue
        counts[0] += 1
        try:
            writer.write(f"GET /feed.rss?slow={number} HTTP/1.1\r\n".encode())
            while not stop.is_set():
                await writer.drain()
                try:
                    # The server closing the connection ends the wait early.
                    if await asyncio.wait_for(reader.read(1024), LINE_PAUSE) == b"":
                        break
                except TimeoutError:
                    pass
                line += 1
                writer.write(f"X-Slow-{line}: {'x' * 20}\r\n".encode())
        except OSError:
            pass
        finally:
            writer.close()


async def _hold(port: int, count: int, seconds: float, ready: Connection) -> list[int]:
    stop = asyncio.Event()
    counts = [0, 0]  # connections opened, connections refused
    tasks = []
    for number in range(count):
        tasks.append(asyncio.create_task(_slow_connection(port, number, stop, counts)))
        if number % 50 == 49:
            await asyncio.sleep(0.05)  # do not flood the listen backlog all at once
    await asyncio.sleep(LINE_PAUSE)
    ready.send(counts[0])
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return counts


def _hold_process(port: int, count: int, seconds: float, ready: Connection) -> None:
    from feedserver.worker import raise_descriptor_limit

    raise_descriptor_limit(count + SPARE_DESCRIPTORS)
    ready.send(asyncio.run(_hold(port, count, seconds, ready)))


@contextmanager
def slow_clients(port: int, count: int, seconds: float) -> Iterator[int]:
    """Hold `count` slow connections to port for about `seconds` from another process;
    yields how many were open once they all had been started."""
    if count == 0:
        yield 0
        return
    theirs, ours = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_hold_process, args=(port, count, seconds, ours), daemon=True
    )
    process.start()
    try:
        if not theirs.poll(60 + count / 10):
            raise RuntimeError("the slow clients did not start")
        yield int(theirs.recv())
    finally:
        process.join(seconds + 60)
        if process.is_alive():
            process.kill()
            process.join()


@dataclass(frozen=True, slots=True)
class SlowClientRun:
    """One launch command's probes with 0, 300 and 1,000 slow clients."""

    command: str
    label: str  # a short name for the table
    probes: dict[int, Probe]  # slow client count -> the probe under it
    opened: dict[int, int]  # slow client count -> connections open when the probe began


def _serve(logs: Path, env: dict[str, str]) -> servers.GunicornServer:
    return servers.start_serve(logs, env=env)


def _gunicorn_conf(logs: Path, env: dict[str, str]) -> servers.GunicornServer:
    return servers.start("wsgi:app", logs, "-c", "config/gunicorn.conf.py", env=env)


# The two documented ways to run feedserver: (command, short label, launcher).
LAUNCHERS: tuple[tuple[str, str, Callable[[Path, dict[str, str]], servers.GunicornServer]], ...] = (
    ("feedserver serve", "serve", _serve),
    ("gunicorn -c config/gunicorn.conf.py wsgi:app", "gunicorn -c", _gunicorn_conf),
)


def slow_client_runs(
    tree: trees.SeedTree, logs: Path, counts: tuple[int, ...], seconds: float
) -> list[SlowClientRun]:
    """For each launch command, a probe of `seconds` under each number of slow clients."""
    from feedserver.worker import raise_descriptor_limit

    raise_descriptor_limit(max(counts) + SPARE_DESCRIPTORS)
    runs = []
    for command, label, launch in LAUNCHERS:
        server = launch(logs, {"FEEDSERVER_SEEDS_DIR": str(tree.root)})
        try:
            server.wait_ready()
            probe(server.port, 1.0)  # both workers have rendered the probed feed
            probes, opened = {}, {}
            for count in counts:
                with slow_clients(server.port, count, seconds + 1) as open_now:
                    opened[count] = open_now
                    probes[count] = probe(server.port, seconds)
            runs.append(SlowClientRun(command, label, probes, opened))
        finally:
            server.stop()
    return runs


# --- a cached feed's latency while a reload runs ------------------------------------------

_RELOAD_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \[(\d+)\] INFO [\w.]+: reload: files=\d+ "
    r"parsed=(\d+) .*duration=([\d.]+)s",
    re.MULTILINE,
)


def reload_windows(log: str, since: float, min_parsed: int) -> dict[int, tuple[float, float]]:
    """Per worker, the (start, end) wall-clock time of its first reload after `since` that
    parsed at least min_parsed files, read from the log's reload lines."""
    windows: dict[int, tuple[float, float]] = {}
    for match in _RELOAD_LINE.finditer(log):
        stamp, pid, parsed, duration = match.groups()
        ended = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        begun = ended - float(duration)
        if begun >= since - 1 and int(parsed) >= min_parsed and int(pid) not in windows:
            windows[int(pid)] = (begun, ended)
    return windows


@dataclass(frozen=True, slots=True)
class ReloadLatency:
    """Probe latencies of a cached feed inside and outside the reloads' windows."""

    during_p99: float
    during_requests: int
    quiet_p99: float
    quiet_requests: int
    reload_seconds: float  # the longest worker's reload
    changed: int
    workers: int


def reload_latency(
    tree: trees.SeedTree, logs: Path, fraction: float, workers: int = 2
) -> ReloadLatency:
    """Edit `fraction` of the files under the README's gunicorn and probe a cached feed until
    every worker has reloaded them."""
    changed = trees.sample_paths(tree.root, tree.seed, fraction)
    # Long enough for a quiet stretch before the reload, short enough to keep the run brief.
    interval = 20 if tree.count <= 10_000 else 40
    env = {"FEEDSERVER_SEEDS_DIR": str(tree.root), "FEEDSERVER_RELOAD_INTERVAL": str(interval)}
    server = servers.start(
        "wsgi:app", logs, "-c", "config/gunicorn.conf.py", "-w", str(workers), env=env
    )
    try:
        server.wait_ready()
        probe(server.port, 1.0)
        quiet = probe(server.port, 3.0)  # right after start: no reload is due yet
        with trees.editing(tree, changed):
            edited_at = time.time()
            trees.rewrite_titles(tree.root, changed, "Edited")
            samples: list[tuple[float, float]] = []
            windows: dict[int, tuple[float, float]] = {}
            deadline = time.monotonic() + 3 * interval + 600
            while len(windows) < workers and time.monotonic() < deadline:
                samples += probe(server.port, 1.0).latencies
                windows = reload_windows(server.tail(10_000), edited_at, len(changed))
            if len(windows) < workers:
                raise RuntimeError(f"the workers did not reload in time: {server.tail()}")
    finally:
        server.stop()
    spans = list(windows.values())
    # A request counts when any part of it overlaps a worker's reload.
    during = [
        took
        for started, took in samples
        if any(started <= high and started + took >= low for low, high in spans)
    ]
    return ReloadLatency(
        percentile(during, 0.99),
        len(during),
        quiet.p99(),
        quiet.attempts,
        max(high - low for low, high in spans),
        len(changed),
        workers,
    )
