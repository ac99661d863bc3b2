"""What four workers hold together: the PSS of a `gunicorn -c config/gunicorn.conf.py -w 4`
master and its workers, above that of the same server on a one-article seeds directory,
against the seed bytes, before and after a reload that changed 1% of the files.

Each server starts with a short reload interval and no snapshot; once every worker has
answered, the processes' PSS is summed (a page shared by n processes counts 1/n in each:
the total counts every page once). Then a share of the files is edited and, once the reload
has reached every worker, every worker answers again and the PSS is summed again.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from . import restart, servers, trees

WORKERS = 4
RELOAD_INTERVAL = 5
CONFIG = Path(__file__).resolve().parent.parent / "config"
CONF = str(CONFIG / "gunicorn.conf.py")
_RELOAD_LINE = re.compile(r"\[(\d+)\].*reload: files=(\d+) parsed=(\d+)")
_SETTLE = 2.0  # seconds the workers must stay the same before a figure is taken


def _reloads(server: servers.GunicornServer, offset: int) -> list[tuple[int, int]]:
    """(pid, parsed) of each reload line logged after `offset` characters of output."""
    text = server.output()[offset:]
    return [(int(m[1]), int(m[3])) for m in _RELOAD_LINE.finditer(text)]


def _settled(server: servers.GunicornServer, timeout: float = 900.0) -> set[int]:
    """Wait until the master has WORKERS workers, the same ones for _SETTLE seconds."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    since = time.monotonic()
    while time.monotonic() < deadline:
        workers = server.workers()
        if workers != seen:
            seen, since = workers, time.monotonic()
        elif len(workers) == WORKERS and time.monotonic() - since >= _SETTLE:
            return workers
        time.sleep(0.1)
    raise TimeoutError(f"workers did not settle: {server.tail()}")


def _served_by_all(server: servers.GunicornServer) -> dict[str, int]:
    """Let every worker render a feed (fresh connections land on whichever worker accepts),
    then sum the PSS of the master and its workers."""
    for _ in range(WORKERS * 8):
        servers.get(server.port, "/feed.rss")
        servers.get(server.port, "/feed.rss?q=cloud")
    time.sleep(0.5)
    return restart.total_memory({server.pid, *server.workers()})


def measure(
    seeds: str, changed: list[str], logs: str, extra: list[str], conf: str = CONF
) -> dict[str, Any]:
    """PSS of the server on `seeds` after start, and after a reload of the `changed` files
    (edited here; the caller puts them back). `extra`: more gunicorn options."""
    server = servers.start(
        "wsgi:app",
        Path(logs),
        "-c",
        conf,
        "--workers",
        str(WORKERS),
        *extra,
        env={
            "FEEDSERVER_SEEDS_DIR": seeds,
            "FEEDSERVER_RELOAD_INTERVAL": str(RELOAD_INTERVAL),
            "FEEDSERVER_POLITE_POLLING": "false",
        },
    )
    try:
        server.wait_ready()
        _settled(server)
        before = _served_by_all(server)
        offset = len(server.output())
        trees.rewrite_titles(Path(seeds), changed, "Update 1:")
        started = time.monotonic()
        # Every process that reloads logs the change: the workers, or the master alone.
        while time.monotonic() - started < 900:
            pids = {pid for pid, parsed in _reloads(server, offset) if parsed == len(changed)}
            workers = server.workers()
            if server.pid in pids or (workers and workers <= pids):
                break
            time.sleep(0.2)
        reached = time.monotonic() - started
        _settled(server)
        after = _served_by_all(server)
    finally:
        server.stop()
    return {"before": before, "after": after, "reached": reached}


def side_by_side(
    tree: trees.SeedTree, logs: Path, extra: list[str], conf: str = CONF
) -> dict[str, Any]:
    """The server on the tree and on one article, taken in turn."""
    changed = trees.sample_paths(tree.root, tree.seed, 0.01)
    one = Path(tempfile.mkdtemp(prefix="feedserver-one-"))
    try:
        first = trees.seed_paths(tree.root)[0]
        (one / "one.md").write_bytes((tree.root / first).read_bytes())
        small = measure(str(one), ["one.md"], str(logs), extra, conf)
        with trees.editing(tree, changed):
            big = measure(str(tree.root), changed, str(logs), extra, conf)
    finally:
        shutil.rmtree(one, ignore_errors=True)
    return {"one": small, "tree": big, "changed": len(changed)}
