"""Workers that share the master's catalog (config/gunicorn.conf.py): the master alone
reloads; a change replaces every worker by one forked with the new catalog; with nothing
changing the workers stay, and their /healthz stays `ok` past the staleness limit because
they follow the master's heartbeat."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from .conftest import GunicornServer
from .test_reload_gunicorn import (
    ACCESS_LOG,
    GUNICORN_CONF,
    WORKERS,
    every_worker,
    feed_has,
    live_workers,
    wait_for_workers,
)

INTERVAL = 1
_RELOADED = re.compile(r"\[(\d+)\] INFO feedserver\.store: reload: files=\d+ parsed=(\d+) ")


def test_the_master_reloads_and_replaces_its_workers(
    start_gunicorn: Callable[..., GunicornServer],
    write_seed: Callable[..., Path],
    tmp_seeds: Path,
) -> None:
    write_seed("first.txt")
    server = start_gunicorn(
        tmp_seeds, "-c", GUNICORN_CONF, *ACCESS_LOG, env={"FEEDSERVER_RELOAD_INTERVAL": "1"}
    )
    wait_for_workers(server, WORKERS)
    every_worker(server, "/feed.rss", feed_has("https://example.com/articles/first"))
    before = live_workers(server)
    # Nothing changes for more than the staleness limit (three intervals): the same
    # workers, each saying ok, dated by the master's latest reload.
    time.sleep(5 * INTERVAL)
    assert live_workers(server) == before

    def fresh_and_ok(status: int, body: bytes) -> bool:
        data = json.loads(body)
        return status == 200 and data["status"] == "ok"

    every_worker(server, "/healthz", fresh_and_ok)

    write_seed("second.txt")
    every_worker(server, "/feed.rss", feed_has("https://example.com/articles/second"))
    after = live_workers(server)
    assert after and not after & before  # every worker was replaced
    reloaders = {pid for pid, _ in _RELOADED.findall(server.output())}
    assert reloaders == {str(server.pid)}, reloaders  # only the master reloads
    assert "Traceback" not in server.output()


def test_the_master_fills_the_allocators_free_blocks() -> None:
    from feedserver import shared_reload

    stats = shared_reload._allocator_stats()
    assert stats is not None and shared_reload._SIZE_CLASS.findall(stats), stats
    try:
        shared_reload._fill_holes()
        assert shared_reload._fillers
    finally:
        shared_reload._fillers.clear()
