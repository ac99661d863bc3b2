"""Memory of a real gunicorn worker stays within render_cache_bytes (plus a margin) however
many distinct URLs clients ask for: junk parameters share one cache entry, and distinct
feed queries evict each other by bytes."""

from __future__ import annotations

import random
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .conftest import TEST_BASE_URL, GunicornServer

ARTICLES = 3000
BUDGET = 16 * 1024 * 1024
# What a worker may grow beyond the budget: the allocator's slack and one render's garbage.
# (Measured: 3 MiB above the warmed-up worker; without a byte budget the queries below
# grow it by about 150 MiB, and without dropping unknown parameters the junk by a GiB.)
MARGIN = 32 * 1024 * 1024
WORDS = ["river", "rocket", "market", "vote", "storm", "chip", "model", "court", "budget"]


def write_large_seed_tree(seeds: Path) -> None:
    """ARTICLES published articles with long excerpts, in one topic and one provider."""
    rng = random.Random(10)
    seeds.mkdir()
    for n in range(ARTICLES):
        excerpt = " ".join(rng.choice(WORDS) + str(rng.randrange(1000)) for _ in range(150))
        (seeds / f"{n:05d}.md").write_text(
            "---\n"
            f"title: Story {n} of a large feed\n"
            f"webUrl: https://example.com/articles/{n}\n"
            f"publishedDateTime: 2023-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00Z\n"
            "published: true\n"
            f"excerpt: {excerpt}\n"
            f"quality: {n % 10}\n"
            f"heat: {n % 7}\n"
            "provider: {name: Example News, domain: example.com}\n"
            "topics: [Everything]\n"
            "---\n",
            encoding="utf-8",
        )


def worker_pid(server: GunicornServer) -> int:
    """The pid of the one worker of a gunicorn master."""
    workers = server.workers()
    assert len(workers) == 1, workers
    return workers.pop()


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def fetch(server: GunicornServer, path: str, gzip: bool) -> tuple[int, str]:
    request = urllib.request.Request(server.url + path)
    if gzip:
        request.add_header("Accept-Encoding", "gzip")
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        return response.status, response.headers["ETag"]


def test_worker_memory_stays_within_the_render_cache_budget(
    tmp_path: Path, start_gunicorn: Callable[..., GunicornServer]
) -> None:
    seeds = tmp_path / "seeds"
    write_large_seed_tree(seeds)
    server = start_gunicorn(
        seeds,
        env={"FEEDSERVER_BASE_URL": TEST_BASE_URL, "FEEDSERVER_RENDER_CACHE_BYTES": str(BUDGET)},
        workers=1,
    )
    pid = worker_pid(server)
    # Warm up: the largest feed in both encodings, and a few renders for the allocator.
    etags = {gzip: fetch(server, "/feed.atom?limit=500", gzip)[1] for gzip in (False, True)}
    for limit in range(490, 500):
        fetch(server, f"/feed.rss?limit={limit}", True)
    baseline = rss_bytes(pid)

    # 1,000 distinct URLs that differ only by parameters no feed reads: one cache entry.
    for n in range(1000):
        gzip = n % 2 == 1
        assert fetch(server, f"/feed.atom?x={n}&limit=500&utm_{n}=1", gzip) == (200, etags[gzip])
    after_junk = rss_bytes(pid)

    # Distinct feed queries that are really different: far more bytes than the budget.
    for limit in range(400, 500, 2):
        for extension in ("atom", "json"):
            assert fetch(server, f"/feed.{extension}?limit={limit}", True)[0] == 200
    after_queries = rss_bytes(pid)

    figures = (
        f"RSS MiB: {baseline >> 20}, after junk {after_junk >> 20}, then {after_queries >> 20}"
    )
    assert after_junk <= baseline + BUDGET + MARGIN, figures
    assert after_queries <= baseline + BUDGET + MARGIN, figures
