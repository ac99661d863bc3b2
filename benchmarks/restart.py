"""Restarts: a process start with unchanged seeds (reusing the parsed-seed snapshot) against a
cold start (no snapshot yet); how many processes parse when four workers start together, and
the memory that four workers hold together, with and without --preload.

`start_app` runs in a fresh process (see fresh.py) and times `create_app`, what a gunicorn
worker or a `--preload` master does before it serves: a cold start parses every file and
writes the snapshot; a restart reads it and parses nothing.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

from . import servers
from .floors import timed

WORKERS = 4
_RELOAD_LINE = re.compile(r"\[(\d+)\].*reload: files=(\d+) parsed=(\d+)")


def start_app(root: str, cache_dir: str) -> dict[str, Any]:
    """Time create_app over the tree with this snapshot folder; what its first load parsed."""
    from feedserver import create_app

    apps = []
    timing = timed(lambda: apps.append(create_app({"seeds_dir": root, "cache_dir": cache_dir})))
    report = apps[0].extensions["feedserver.store"].last_report
    return {"start": timing, "parsed": report.parsed, "files": report.files}


def workers_parsing(seeds: Path, logs: Path, cache_dir: Path, preload: bool) -> dict[str, Any]:
    """Start gunicorn -w 4 (with or without --preload) on an empty snapshot folder: how many
    processes parsed every file, and the time to the first answer."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    options = ["--workers", str(WORKERS), *(["--preload"] if preload else [])]
    server = servers.start(
        "wsgi:app",
        logs,
        *options,
        env={
            "FEEDSERVER_SEEDS_DIR": str(seeds),
            "FEEDSERVER_CACHE_DIR": str(cache_dir),
            "FEEDSERVER_RELOAD_INTERVAL": "3600",
            # Every worker must render the feed: no 429 for the repeated polls below.
            "FEEDSERVER_POLITE_POLLING": "false",
        },
    )
    try:
        ready = server.wait_ready()
        server.wait_workers(WORKERS)
        loads: list[tuple[int, int, int]] = []
        deadline = time.monotonic() + 900
        expected = 1 if preload else WORKERS
        while len(loads) < expected and time.monotonic() < deadline:
            text = server.log.read_text(encoding="utf-8", errors="replace")
            loads = [(int(m[1]), int(m[2]), int(m[3])) for m in _RELOAD_LINE.finditer(text)]
            time.sleep(0.1)
        # Every worker serves the all-articles feed (requests on fresh connections go to
        # whichever worker accepts first), then the processes' memory is summed.
        for _ in range(WORKERS * 8):
            servers.get(server.port, "/feed.rss")
        memory = total_memory({server.pid, *server.workers()})
    finally:
        server.stop()
    return {
        "ready": ready,
        "loads": len(loads),
        "full": sum(1 for _, files, parsed in loads if parsed == files),
        **memory,
    }


def _kib(pid: int, path: str, field: str) -> int:
    """A size field of /proc/<pid>/<path> in KiB; 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/{path}", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def total_memory(pids: set[int]) -> dict[str, int]:
    """Bytes held by these processes together: PSS (shared pages split between the processes
    that share them, so a total counts each page once) and the sum of their RSS."""
    return {
        "pss": sum(_kib(pid, "smaps_rollup", "Pss") for pid in pids) * 1024,
        "rss": sum(_kib(pid, "status", "VmRSS") for pid in pids) * 1024,
    }
