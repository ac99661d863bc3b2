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
}
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


@pytest.fixture(scope="module")
def server(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    running = gunicorn_launcher(BUNDLED_SEEDS, tmp_path_factory.mktemp("browser"))
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
