"""The incremental catalog (only touched collections rebuilt) equals a catalog built from
scratch, after any sequence of edits: adds, edits, unpublishing, deletions, duplicates,
topic and provider moves, scheduled articles."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from feedserver.catalog import Catalog
from feedserver.store import CatalogStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TOPICS = ["Alpha", "alpha", "Beta", "Gamma", "Delta"]
PROVIDERS = [("One", "one.example"), ("Two", "www.two.example"), ("Three", "")]


def summary(catalog: Catalog) -> dict[str, object]:
    def shape(collections: dict[str, object]) -> dict[str, object]:
        return {
            key: (c.name, [a.url for a in c.articles])  # type: ignore[attr-defined]
            for key, c in collections.items()
        }

    return {
        "all": [a.url for a in catalog.everything.articles],
        "topics": shape(catalog.topics),  # type: ignore[arg-type]
        "providers": shape(catalog.providers),  # type: ignore[arg-type]
        "problems": sorted((p.file, p.reason, p.fatal) for p in catalog.problems),
        "next_release": catalog.next_release,
    }


def random_article(rng: random.Random, n: int) -> dict[str, object]:
    name, domain = rng.choice(PROVIDERS)
    return {
        "title": f"Story {n} {rng.random():.6f}",
        "webUrl": f"https://news.example/{rng.randrange(30)}",  # collisions: duplicates
        "publishedDateTime": (NOW + timedelta(hours=rng.randint(-500, 3))).isoformat(),
        "published": rng.random() > 0.2,
        "topics": rng.sample(TOPICS, rng.randint(0, 3)),
        "provider": {"name": name, "domain": domain},
    }


@pytest.mark.parametrize("seed", range(6))
def test_incremental_catalog_equals_a_full_build(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    clock = [NOW]
    store = CatalogStore(tmp_path, 1 << 20, "Site", clock=lambda: clock[0])
    mtime = 1_700_000_000
    for step in range(40):
        for _ in range(rng.randint(1, 4)):
            name = f"{rng.randrange(25)}.txt"
            path = tmp_path / name
            if path.exists() and rng.random() < 0.25:
                path.unlink()
                continue
            if rng.random() < 0.1:
                # Broken, saying published or not: the last good version stays or goes.
                published = "published: true\n" if rng.random() < 0.5 else ""
                path.write_text(f"---\n{published}title: [broken\n---\n")
            else:
                text = yaml.safe_dump(random_article(rng, step), sort_keys=False)
                path.write_text(f"---\n{text}---\n")
            mtime += 1
            os.utime(path, (mtime, mtime))
        clock[0] += timedelta(hours=rng.choice((0, 0, 1)))
        store.reload()
        # What the store serves, last good versions of broken files included, built anew by
        # a second store that takes over every file's state (as from a snapshot) in one go.
        fresh = CatalogStore(tmp_path, 1 << 20, "Site", clock=lambda: clock[0])
        fresh.reuse(dict(store.file_states()))
        assert fresh.reload().parsed == 0
        assert summary(store.catalog) == summary(fresh.catalog), f"step {step}"
        # A file that failed without saying `published: true` withholds its last URL: no
        # other copy of that article is served meanwhile.
        withheld = {
            state.withheld_url
            for state in store.file_states().values()
            if state.served.article is None and state.withheld_url
        }
        assert not withheld & {a.url for a in store.catalog.everything.articles}, f"step {step}"
