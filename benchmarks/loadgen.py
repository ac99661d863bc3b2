"""HTTP load: wrk when it is installed (`apt-get install -y wrk`), else a Python load generator
that keeps the same number of connections open, so two servers are always compared under the
same load.

The Python generator runs one process per wrk thread, each with asyncio connections sending
GET requests back to back (HTTP/1.1, reconnecting whenever the server closes, as gunicorn's sync
workers do after every response). It tops out lower than wrk, so its figures are only good
as ratios between servers measured with it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

WRK_HINT = "wrk is not installed (apt-get install -y wrk); using the Python load generator"


@dataclass(frozen=True, slots=True)
class Load:
    """What one load run achieved."""

    tool: str
    requests_per_second: float
    requests: int
    errors: int  # socket errors and non-2xx/3xx answers


def wrk_available() -> bool:
    """Whether wrk is on the PATH."""
    return shutil.which("wrk") is not None


def run_wrk(url: str, connections: int, threads: int, seconds: float) -> Load:
    """Load url with wrk and read its summary."""
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", url],
        capture_output=True,
        text=True,
        check=True,
    )
    output = result.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return Load("wrk", float(rate.group(1)), int(total.group(1)), errors)


async def _connection(host: str, port: int, request: bytes, deadline: float) -> tuple[int, int]:
    done = errors = 0
    reader = writer = None
    while time.monotonic() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            if head[9:10] in (b"2", b"3"):
                done += 1
            else:
                errors += 1
            if re.search(rb"(?i)\r\nconnection:\s*close", head) or length is None:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()
    return done, errors


async def _worker(host: str, port: int, path: str, connections: int, seconds: float) -> list[int]:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    deadline = time.monotonic() + seconds
    results = await asyncio.gather(
        *(_connection(host, port, request, deadline) for _ in range(connections))
    )
    return [sum(done for done, _ in results), sum(errors for _, errors in results)]


def _worker_process(args: tuple[str, int, str, int, float]) -> list[int]:
    return asyncio.run(_worker(*args))


def run_python(url: str, connections: int, threads: int, seconds: float) -> Load:
    """Load url from `threads` processes holding `connections` connections between them."""
    match = re.fullmatch(r"http://([^/:]+):(\d+)(/.*)", url)
    if match is None:
        raise ValueError(f"cannot load {url}")
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    shares = [
        connections // threads + (1 if i < connections % threads else 0) for i in range(threads)
    ]
    jobs = [(host, port, path, share, seconds) for share in shares if share]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        results = pool.map(_worker_process, jobs)
    elapsed = time.perf_counter() - started
    done = sum(r[0] for r in results)
    return Load("python", done / max(elapsed, seconds), done, sum(r[1] for r in results))


def run(url: str, connections: int, threads: int, seconds: float, tool: str = "auto") -> Load:
    """Load url with wrk (tool "wrk" or "auto" when installed) or the Python generator."""
    if tool == "wrk" or (tool == "auto" and wrk_available()):
        return run_wrk(url, connections, threads, seconds)
    return run_python(url, connections, threads, seconds)
