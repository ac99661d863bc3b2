"""Real clients: pages rendered by a headless Chromium, feeds fetched by newsboat.

Both come from Debian packages; the `debian_program` fixture installs a missing one with
apt-get (as CI does on a clean machine) and skips, saying why, where it cannot."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import pytest

from .conftest import GunicornServer

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_apt_updated = False


def install_debian_package(program: str, package: str) -> str:
    """The path of program, installing its Debian package first if it is missing."""
    global _apt_updated
    found = shutil.which(program)
    if found:
        return found
    if not shutil.which("apt-get"):
        pytest.skip(f"{program} is missing and apt-get is not available to install {package}")
    if os.geteuid() != 0:
        pytest.skip(f"{program} is missing; installing {package} needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        _apt_updated = True
    result = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    found = shutil.which(program)
    if not found:
        pytest.skip(f"could not install {package}: {result.stderr.strip()[-300:]}")
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    return install_debian_package("chromium", "chromium")


@pytest.fixture(scope="session")
def newsboat() -> str:
    return install_debian_package("newsboat", "newsboat")


@pytest.fixture(scope="module")
def server(
    gunicorn_launcher: Callable[..., GunicornServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    seeds = Path(__file__).parent.parent / "seeds"
    # Real readers with the default polite polling: none of what they do is refused.
    env = {"FEEDSERVER_POLITE_POLLING": "true"}
    running = gunicorn_launcher(seeds, tmp_path_factory.mktemp("readers"), env=env)
    yield running
    running.stop()


class LinkCollector(HTMLParser):
    """The autodiscovery links, headings and code texts of a rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.alternates: list[tuple[str, str]] = []
        self.codes: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and values.get("rel") == "alternate":
            self.alternates.append((values.get("type") or "", values.get("href") or ""))
        self._in_code = tag == "code"

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.codes.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False


def render(chromium: str, url: str, tmp_path: Path, *extra: str) -> str:
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


@pytest.mark.parametrize("path", ["/", "/topics/ai", "/providers/techcrunch.com"])
def test_pages_render_in_chromium_and_autodiscover_feeds(
    chromium: str, server: GunicornServer, tmp_path: Path, path: str
) -> None:
    dom = render(chromium, server.url + path, tmp_path, "--dump-dom")
    assert "<body>" in dom and "</html>" in dom, dom[-500:]
    page = LinkCollector()
    page.feed(dom)
    types = {kind for kind, _ in page.alternates}
    assert types == {"application/rss+xml", "application/atom+xml", "application/feed+json"}
    for kind, href in page.alternates:
        assert href in page.codes  # the same URL is shown for copying
        status, _, body = server.fetch(href.removeprefix(server.url))
        assert status == 200
        if kind == "application/feed+json":
            assert json.loads(body)["items"]
        else:
            parsed = feedparser.parse(body)
            assert not parsed.bozo and parsed.entries
    if path == "/":
        for name in ("AI", "Microsoft AI", "TechCrunch", "HotHardware"):
            assert f">{name}</a>" in dom
        assert "GeekWire" not in dom and '/topics/azure"' not in dom


def test_page_fits_a_phone_screen(chromium: str, server: GunicornServer, tmp_path: Path) -> None:
    shot = tmp_path / "phone.png"
    render(
        chromium,
        server.url + "/topics/ai",
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=390,844",
        "--hide-scrollbars",
    )
    assert shot.stat().st_size > 5000


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/feed.rss", 2),
        ("/feed.atom", 2),
        ("/topics/ai.rss", 2),
        ("/topics/microsoft-ai.atom", 2),
        ("/providers/techcrunch.com.rss", 1),
        ("/topics/ai+microsoft-ai.rss", 2),
        ("/feed.atom?topic=ai&provider=techcrunch.com", 1),
    ],
)
def test_newsboat_subscribes_and_shows_the_articles(
    newsboat: str, server: GunicornServer, tmp_path: Path, path: str, expected: int
) -> None:
    urls = tmp_path / "urls"
    urls.write_text(server.url + path + "\n")
    cache = tmp_path / "cache.db"
    config = tmp_path / "config"
    config.write_text("")
    result = subprocess.run(
        [newsboat, "-u", str(urls), "-c", str(cache), "-C", str(config), "-x", "reload"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(cache) as db:
        items = db.execute("SELECT title, url, author FROM rss_item").fetchall()
        feed_titles = [row[0] for row in db.execute("SELECT title FROM rss_feed")]
    assert len(items) == expected
    assert all(title and url.startswith("https://") and author for title, url, author in items)
    assert feed_titles and feed_titles[0].startswith(("feedserver", "AI", "Microsoft", "Tech"))
    titles = " ".join(title for title, _, _ in items)
    assert "GeekWire" not in titles and "computing.co.uk" not in titles
