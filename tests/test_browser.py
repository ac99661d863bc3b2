"""What a person sees in a real browser: headless Chromium opens every kind of page and a
feed URL, axe-core checks each for accessibility in light and dark mode, and screenshots at
phone (390 px) and desktop (1280 px) width are written to test-output/browser/.

Chromium comes from Debian (installed by `debian_program`-style fixtures as in
test_readers.py); axe-core and playwright-core (which drives that Chromium and never
downloads a browser of its own) come from npm, installed into a cache folder when missing.
Each test skips, saying why, where one of them cannot be had."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import feedparser
import lxml.html
import pytest

from .conftest import BUNDLED_SEEDS, ROOT, GunicornServer
from .test_readers import install_debian_package, render

# Exact versions: the same checks on every machine until someone moves them on purpose.
NODE_PACKAGES = ("axe-core@4.14.1", "playwright-core@1.65.1")
SCRIPT = Path(__file__).parent / "browser" / "check_pages.cjs"
SCREENSHOTS = ROOT / "test-output" / "browser"
# Every kind of page a person meets, by name.
PAGES = {
    "home": "/",
    "topic": "/topics/ai",
    "provider": "/providers/techcrunch.com",
    "topics": "/topics",
    "providers": "/providers",
    "search": "/search?q=microsoft+openai",
    "preview-rss": "/topics/ai.rss",
    "preview-atom": "/feed.atom",
    "preview-json": "/providers/techcrunch.com.json",
    "not-found": "/no/such/page",
    "stats": "/stats",
}
PHONE = 390
# Who polls the browser tests' server before the pages are opened, so /stats has rows: the
# aggregators' long names and each kind of feed.
POLLERS = (
    "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 123 subscribers; )",
    "Mozilla/5.0 (compatible; Inoreader/1.0; +http://www.inoreader.com/feed-fetcher; "
    "12 subscribers; )",
    "Feedbin feed-id:1373711 - 42 subscribers",
    "newsboat/2.36.0 (Linux x86_64)",
)
POLLED = (
    "/feed.rss",
    "/topics/ai.atom",
    "/topics/microsoft-ai.rss",
    "/providers/techcrunch.com.json",
)
FEED_PAGES = {"preview-rss": "/topics/ai.rss", "preview-atom": "/feed.atom"}
FEED_PAGES["preview-json"] = "/providers/techcrunch.com.json"


def _cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "feedserver-tests" / "node"


@pytest.fixture(scope="session")
def node() -> str:
    """The node program, installing Debian's nodejs if it is missing."""
    return install_debian_package("node", "nodejs")


@pytest.fixture(scope="session")
def node_modules(node: str) -> Path:
    """A node_modules folder holding NODE_PACKAGES, installed with npm when missing."""
    npm = install_debian_package("npm", "npm")
    folder = _cache_folder()
    stamp = folder / "installed.txt"
    wanted = "\n".join(NODE_PACKAGES)
    if not stamp.exists() or stamp.read_text() != wanted:
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder), *NODE_PACKAGES],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            pytest.skip(f"npm could not install {NODE_PACKAGES}: {result.stderr.strip()[-300:]}")
        stamp.write_text(wanted)
    return folder / "node_modules"


def _wait_for_stats(server: GunicornServer, feeds: int, timeout: float = 30.0) -> None:
    """Wait until the workers have written the polls of that many feeds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, body = server.fetch("/stats.json")
        if status == 200 and len(json.loads(body)["feeds"]) >= feeds:
            return
        time.sleep(0.2)
    raise AssertionError("the polls did not reach /stats.json")


@pytest.fixture(scope="module")
def server(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    running = gunicorn_launcher(
        BUNDLED_SEEDS,
        tmp_path_factory.mktemp("browser"),
        env={"FEEDSERVER_STATS_FLUSH_SECONDS": "1"},
    )
    for agent in POLLERS:
        for path in POLLED:
            request = urllib.request.Request(running.url + path, headers={"User-Agent": agent})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
    _wait_for_stats(running, len(POLLED))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def checked(
    node: str,
    node_modules: Path,
    server: GunicornServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """What Chromium saw on each of PAGES: status, axe violations, articles, overflow."""
    chromium = install_debian_package("chromium", "chromium")
    work = tmp_path_factory.mktemp("axe")
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    job = {
        "chromium": chromium,
        "axe": str(node_modules / "axe-core" / "axe.min.js"),
        "base": server.url,
        "pages": [{"name": name, "path": path} for name, path in PAGES.items()],
        "out": str(SCREENSHOTS),
        "profile": str(work / "profile"),
    }
    (work / "job.json").write_text(json.dumps(job))
    result = subprocess.run(
        [node, str(SCRIPT), str(work / "job.json")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen: dict[str, Any] = json.loads(result.stdout)
    return seen


@pytest.mark.parametrize("name", PAGES)
def test_every_kind_of_page_passes_axe_in_light_and_dark_mode(
    checked: dict[str, Any], name: str
) -> None:
    page = checked[name]
    assert page["status"] == (404 if name == "not-found" else 200)
    assert page["contentType"] == "text/html; charset=utf-8"
    assert page["rulesPassed"] > 20  # axe did run its checks
    assert page["violations"] == [], json.dumps(page["violations"], indent=2)
    assert page["scripts"] == 0


@pytest.mark.parametrize("name", PAGES)
def test_every_kind_of_page_fits_a_phone_and_has_a_dark_mode(
    checked: dict[str, Any], name: str
) -> None:
    page = checked[name]
    assert all(overflow <= 0 for overflow in page["overflow"].values()), page["overflow"]
    assert page["lightBackground"] != page["darkBackground"]
    for shot in (f"{name}-phone-light", f"{name}-desktop-light", f"{name}-phone-dark"):
        assert (SCREENSHOTS / f"{shot}.png").stat().st_size > 5000, shot


@pytest.mark.parametrize("name", PAGES)
def test_nothing_sticks_out_of_a_phone_screen(checked: dict[str, Any], name: str) -> None:
    """At 390 px nothing reaches past the viewport unless a box that scrolls sideways holds
    it, and every table's last column is on screen or in such a box."""
    for scheme in ("light", "dark"):
        seen = checked[name]["layout"][f"{scheme}-{PHONE}"]
        assert seen["outside"] == [], seen["outside"]
        for table in seen["tables"]:
            assert table["width"] == PHONE
            right = table["lastColumnRight"]
            scroller = table["scrollerRight"]
            assert right <= PHONE or (scroller is not None and scroller <= PHONE), table
        assert seen["split"] == [], "feed links split across lines"


def test_the_stats_tables_and_a_topics_provider_feeds_fit_a_phone(
    checked: dict[str, Any],
) -> None:
    stats = checked["stats"]["layout"][f"light-{PHONE}"]
    assert [t["id"] for t in stats["tables"]] == ["feeds", "days"]
    assert all(t["scrollerRight"] is not None for t in stats["tables"])  # scroll, not cut off
    desktop = checked["stats"]["layout"]["light-1280"]
    assert all(t["lastColumnRight"] <= 1280 for t in desktop["tables"])
    topic = checked["topic"]["layout"][f"light-{PHONE}"]
    assert topic["groups"] == 2 and topic["split"] == []  # AI from HotHardware, TechCrunch


@pytest.mark.parametrize("name", FEED_PAGES)
def test_a_feed_url_shows_its_entries_as_html_in_chromium(
    checked: dict[str, Any], server: GunicornServer, name: str
) -> None:
    _, _, body = server.fetch(FEED_PAGES[name])  # what a reader gets at the same URL
    if name == "preview-json":
        links = [item["url"] for item in json.loads(body)["items"]]
    else:
        links = [entry.link for entry in feedparser.parse(body).entries]
    assert links and checked[name]["articles"] == links
    assert checked[name]["title"].endswith(("(RSS feed)", "(Atom feed)", "(JSON Feed)"))


@pytest.mark.parametrize("path", FEED_PAGES.values())
def test_a_feed_opened_with_plain_chromium_is_a_page_with_the_entries(
    server: GunicornServer, tmp_path: Path, path: str
) -> None:
    """The same with nothing but the chromium command line, as test_readers drives it."""
    chromium = install_debian_package("chromium", "chromium")
    dom = lxml.html.fromstring(render(chromium, server.url + path, tmp_path, "--dump-dom"))
    headings = dom.xpath("//main//article//h3/a")
    assert len(headings) >= 1
    assert all(a.get("href", "").startswith("https://") and a.text_content() for a in headings)
    assert dom.xpath("//code[contains(., $url)]", url=server.url + path)  # the URL to copy
