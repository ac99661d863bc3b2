"""WebSub: every feed advertises the hub, and a reload that changes feeds tells the hub once
per changed feed, from one process, without hurting serving when the hub is down."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs
from xml.etree import ElementTree

import pytest
from flask import Flask

from feedserver import create_app
from feedserver.config import ConfigError
from feedserver.store import CatalogStore
from feedserver.websub import changed_collections

from .conftest import TEST_BASE_URL, GunicornServer

ATOM = "{http://www.w3.org/2005/Atom}"


class Hub:
    """A WebSub hub on loopback that records every publish notification."""

    def __init__(self) -> None:
        self.pings: list[str] = []
        # Each ping with the status it was answered (read once: a test may change it meanwhile).
        self.answered: list[tuple[str, int]] = []
        self.status = 204
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                status = hub.status
                if form.get("hub.mode") == ["publish"]:
                    urls = form.get("hub.url", [])
                    hub.pings += urls
                    hub.answered += [(url, status) for url in urls]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.pings) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def hub() -> Iterator[Hub]:
    running = Hub()
    yield running
    running.server.shutdown()


def two_topics(write_seed: Callable[..., Path]) -> None:
    write_seed("a.txt", topics=["Alpha"], provider={"name": "A", "domain": "a.example"})
    write_seed("b.txt", topics=["Beta"], provider={"name": "B", "domain": "b.example"})


def feeds_of(path: str) -> set[str]:
    return {f"{TEST_BASE_URL}{path}.{extension}" for extension in ("rss", "atom", "json")}


def test_config_needs_base_url_for_a_hub(tmp_seeds: Path) -> None:
    with pytest.raises(ConfigError, match="websub_hub needs base_url"):
        create_app({"seeds_dir": str(tmp_seeds), "websub_hub": "https://hub.example/"})
    with pytest.raises(ConfigError, match="websub_hub"):
        create_app({"seeds_dir": str(tmp_seeds), "websub_hub": "ftp://hub.example/"})


@pytest.mark.parametrize("path", ["/feed", "/topics/alpha", "/providers/a.example"])
def test_every_feed_advertises_the_hub(
    make_app: Callable[..., Flask],
    tmp_seeds: Path,
    write_seed: Callable[..., Path],
    path: str,
) -> None:
    two_topics(write_seed)
    hub = "https://hub.example/"
    client = make_app(tmp_seeds, base_url=TEST_BASE_URL, websub_hub=hub).test_client()
    for extension in ("rss", "atom"):
        response = client.get(f"{path}.{extension}")
        links = {
            link.get("rel"): link.get("href")
            for link in ElementTree.fromstring(response.data).iter(f"{ATOM}link")
        }
        assert links["hub"] == hub
        assert links["self"] == f"{TEST_BASE_URL}{path}.{extension}"
        assert response.headers["Link"] == (
            f'<{hub}>; rel="hub", <{TEST_BASE_URL}{path}.{extension}>; rel="self"'
        )
    feed = client.get(f"{path}.json").get_json()
    assert feed["hubs"] == [{"type": "WebSub", "url": hub}]


def test_no_hub_no_advertising(client: object) -> None:
    response = client.get("/feed.atom")  # type: ignore[attr-defined]
    assert "Link" not in response.headers and b'rel="hub"' not in response.data


def reloading_app(tmp_seeds: Path, hub_url: str) -> Flask:
    app = create_app(
        {"seeds_dir": str(tmp_seeds), "base_url": TEST_BASE_URL, "websub_hub": hub_url},
        reload_in_background=True,
    )
    publisher = app.extensions["feedserver.websub"]
    publisher.first_pause = 0.05
    return app


def test_a_changed_topic_pings_each_of_its_feeds_once(
    hub: Hub, tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    two_topics(write_seed)
    app = reloading_app(tmp_seeds, hub.url)
    scheduler = app.extensions["feedserver.scheduler"]
    scheduler.reload()  # nothing changed: no ping
    write_seed("c.txt", topics=["Alpha"], provider={"name": "A", "domain": "a.example"})
    scheduler.reload()
    expected = feeds_of("/feed") | feeds_of("/topics/alpha") | feeds_of("/providers/a.example")
    hub.wait_for(len(expected))
    time.sleep(0.3)  # and nothing more arrives
    assert Counter(hub.pings) == dict.fromkeys(expected, 1)
    assert not any("beta" in url or "b.example" in url for url in hub.pings)


def test_a_hub_that_is_down_does_not_hurt_serving(
    tmp_seeds: Path, write_seed: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    two_topics(write_seed)
    down = Hub()
    down.server.shutdown()
    down.server.server_close()  # nothing listens at its address any more
    app = reloading_app(tmp_seeds, down.url)
    publisher = app.extensions["feedserver.websub"]
    publisher.attempts = 3
    client = app.test_client()
    write_seed("c.txt", topics=["Alpha"])
    app.extensions["feedserver.scheduler"].reload()
    for _ in range(5):
        assert client.get("/topics/alpha.atom").status_code == 200
    # Served while the publisher still waits between its retries (1 s, then 2 s): the
    # reload and the requests never waited for the hub.
    assert "gave up" not in caplog.text
    deadline = time.monotonic() + 30
    while "gave up" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "retrying" in caplog.text and "gave up" in caplog.text


def test_a_failing_hub_is_retried_until_it_accepts(hub: Hub) -> None:
    from feedserver.websub import HubPublisher

    hub.status = 503
    publisher = HubPublisher(hub.url, TEST_BASE_URL, 50, "retry-test", first_pause=0.05)
    threading.Timer(0.12, lambda: setattr(hub, "status", 204)).start()
    assert publisher.publish(f"{TEST_BASE_URL}/feed.rss")
    assert len(hub.pings) >= 2


def test_one_process_pings_under_several_workers(
    hub: Hub,
    tmp_seeds: Path,
    write_seed: Callable[..., Path],
    start_gunicorn: Callable[..., GunicornServer],
) -> None:
    two_topics(write_seed)
    server = start_gunicorn(
        tmp_seeds,
        "-c",
        "config/gunicorn.conf.py",
        env={
            "FEEDSERVER_RELOAD_INTERVAL": "1",
            "FEEDSERVER_BASE_URL": TEST_BASE_URL,
            "FEEDSERVER_WEBSUB_HUB": hub.url,
        },
        workers=3,
    )
    time.sleep(1.5)  # every worker has loaded and started its job
    write_seed("c.txt", topics=["Alpha"], provider={"name": "A", "domain": "a.example"})
    expected = feeds_of("/feed") | feeds_of("/topics/alpha") | feeds_of("/providers/a.example")
    hub.wait_for(len(expected))
    time.sleep(2.5)  # two more intervals: no other worker pings as well
    assert Counter(hub.pings) == dict.fromkeys(expected, 1), server.output()[-2000:]


# --- the queue: one pending ping per feed, bounded; no redirects ------------------------------


class RecordingHub(Hub):
    """A hub that counts the pings it accepted."""

    def accepted(self) -> Counter[str]:
        return Counter(url for url, status in self.answered if status < 300)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_a_feed_waits_in_the_queue_once_while_the_hub_is_down() -> None:
    from feedserver.websub import HubPublisher

    hub = RecordingHub()
    try:
        hub.status = 503
        # Short pauses that stop doubling: on a loaded machine many retries happen before
        # the hub comes back, and the next one must not be minutes away.
        publisher = HubPublisher(
            hub.url, TEST_BASE_URL, 50, "dedupe-test", 1000, 0.02, max_pause=0.2
        )
        a, b, c = (f"{TEST_BASE_URL}/topics/{name}.rss" for name in "abc")
        publisher.enqueue([a, b, c])
        assert wait_until(lambda: len(hub.pings) >= 2)  # a is being retried
        for _ in range(20):  # every reload while the hub is down changes the same feeds
            publisher.enqueue([a, b, c])
        pending = publisher.pending()
        assert sorted(pending) == sorted({a, b, c}), pending  # each once; a again after a
        hub.status = 204
        assert wait_until(lambda: sum(hub.accepted().values()) == 4, timeout=60)
        time.sleep(0.3)  # and nothing more arrives
        assert hub.accepted() == {a: 2, b: 1, c: 1}
        assert publisher.pending() == []
    finally:
        hub.server.shutdown()


def test_the_queue_is_bounded_and_says_what_it_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from feedserver.websub import HubPublisher

    hub = RecordingHub()
    try:
        hub.status = 503
        publisher = HubPublisher(hub.url, TEST_BASE_URL, 50, "bound-test", 1000, 0.05, 5)
        first = f"{TEST_BASE_URL}/feed.rss"
        publisher.enqueue([first])
        assert wait_until(lambda: len(hub.pings) >= 1)  # the first is in flight, not waiting
        urls = [f"{TEST_BASE_URL}/topics/t{n}.rss" for n in range(12)]
        publisher.enqueue(urls)
        assert publisher.pending() == urls[:5]
        assert publisher.dropped == 7
        assert "queue full (5 feeds waiting); dropped 7 notifications" in caplog.text
    finally:
        hub.server.shutdown()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_hub_redirect_is_a_failure_and_is_not_followed(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    from feedserver.websub import HubPublisher

    received: dict[str, list[str]] = {"hub": [], "target": []}

    def server(name: str, answer: int, location: str = "") -> ThreadingHTTPServer:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received[name].append(self.command)
                self.send_response(answer)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = do_PUT = do_POST

            def log_message(self, *args: object) -> None:
                pass

        running = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=running.serve_forever, daemon=True).start()
        return running

    target = server("target", 204)  # where the redirect points: it must hear nothing
    hub = server("hub", status, f"http://127.0.0.1:{target.server_address[1]}/")
    try:
        url = f"http://127.0.0.1:{hub.server_address[1]}/"
        publisher = HubPublisher(url, TEST_BASE_URL, 50, "redirect-test", 2, 0.01)
        assert not publisher.publish(f"{TEST_BASE_URL}/feed.rss")
        assert received == {"hub": ["POST", "POST"], "target": []}  # both attempts, no more
        assert f"hub answered {status} (redirects are not followed)" in caplog.text
    finally:
        hub.shutdown()
        target.shutdown()


def test_urls_in_the_link_header_are_percent_encoded(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    two_topics(write_seed)
    hub = 'https://hub.example/a b/"é",<y>'  # config takes it: a path is not checked
    client = make_app(tmp_seeds, base_url=TEST_BASE_URL, websub_hub=hub).test_client()
    response = client.get(
        "/topics/alpha.atom", query_string={"q": 'test "a",<b>;é', "junk": "x y", "limit": "5"}
    )
    assert response.status_code == 200
    link = response.headers["Link"]
    assert link.isascii()
    hub_part, self_part = link.split(", ")
    assert hub_part == '<https://hub.example/a%20b/%22%C3%A9%22%2C%3Cy%3E>; rel="hub"'
    assert self_part == (
        f'<{TEST_BASE_URL}/topics/alpha.atom?limit=5&q=test+%22a%22%2C%3Cb%3E%3B%C3%A9>; rel="self"'
    )
    assert not any(c in link[1 : link.index(">")] for c in ' "<,')


def test_a_feed_whose_entries_show_a_renamed_topic_counts_as_changed(
    tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", topics=["alpha"], provider={"name": "A", "domain": "a.example"})
    write_seed("b.txt", topics=["alpha"], provider={"name": "B", "domain": "b.example"})
    write_seed("c.txt", topics=["Alpha"], provider={"name": "B", "domain": "b.example"})
    store = CatalogStore(tmp_seeds, 1 << 20, "Site")
    store.reload()
    before = store.catalog
    assert before.topics["alpha"].name == "alpha"
    write_seed("b.txt", topics=["Alpha"], provider={"name": "B", "domain": "b.example"})
    store.reload()
    after = store.catalog
    assert after.topics["alpha"].name == "Alpha"
    # Provider A's articles did not change, but its feed's categories now say "Alpha".
    assert after.providers["a.example"] is before.providers["a.example"]
    changed = {(c.kind, c.key) for c in changed_collections(before, after, 10)}
    assert changed == {
        ("all", ""),
        ("topic", "alpha"),
        ("provider", "a.example"),
        ("provider", "b.example"),
    }
    assert not list(changed_collections(after, after, 10))
