"""config/nginx.conf for real: a Debian nginx with that file in front of a real gunicorn.

The shipped file is used as it is, but for three values a test must change: the upstream
port, the listening port and the cache directory (each substitution must match exactly once,
so the test breaks loudly if the file drifts). It is included from a minimal nginx.conf whose
pid, logs and temporary files all live under the test's own directory. nginx is installed
with apt-get where it is missing; the tests skip, saying why, where that is impossible.
"""

from __future__ import annotations

import gzip
import http.client
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.servers import free_port
from feedserver.negotiation import FEED_VARY

from .conftest import BUNDLED_SEEDS, ROOT, GunicornServer
from .test_readers import install_debian_package

NGINX_CONF = ROOT / "config" / "nginx.conf"
RELOAD_INTERVAL = 1  # FEEDSERVER_RELOAD_INTERVAL, and so the shared cache's s-maxage
FRESHNESS_SLACK = 2.0  # seconds beyond reload_interval + max-age for a change to show
FEED = "/topics/ai.rss"
# A feed's Cache-Control: readers keep it as long as it goes between articles (a day, at
# most), shared caches such as this nginx revalidate it every reload_interval.
FEED_CACHE_CONTROL = re.compile(rf"public, max-age=\d+, s-maxage={RELOAD_INTERVAL}")


def shared_max_age(cache_control: str) -> int:
    """How long a shared cache may keep a response: s-maxage if given, else max-age."""
    directives = dict(d.partition("=")[::2] for d in cache_control.split(", "))
    return int(directives.get("s-maxage") or directives["max-age"])


# A published AI article of the bundled seeds, and its title line.
EDITED_SEED = "000_17b6bf656801d13b.txt"
OLD_TITLE = 'title: "Microsoft And OpenAI Team To Build A 285,000-Core Azure Supercomputer"'
NEW_TITLE = "Edited through the proxy test"
# Response headers that a cached copy must repeat exactly.
ENTITY_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Content-Encoding",
    "ETag",
    "Last-Modified",
    "Cache-Control",
    "Vary",
    "X-Content-Type-Options",
    "Link",
)
# /usr/sbin is not on every user's PATH, and nginx lives there.
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
NGINX_START_TIMEOUT = 10.0


def _path_with_sbin() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])


@pytest.fixture(scope="session")
def nginx_program() -> str:
    """The nginx binary, installing Debian's nginx package if it is missing."""
    found = shutil.which("nginx", path=_path_with_sbin())
    if found:
        return found
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", _path_with_sbin())
        return install_debian_package("nginx", "nginx")


# --- running nginx ----------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def cache(self) -> str | None:
        return self.headers.get("X-Cache-Status")

    def entity(self) -> dict[str, str | None]:
        return {name: self.headers.get(name) for name in ENTITY_HEADERS}


def request(
    port: int,
    path: str,
    *,
    host: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """One request on a new connection; no Accept-Encoding unless given (http.client then
    sends `identity`)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        body = response.read()
        return Reply(response.status, response.headers, body)
    finally:
        connection.close()


@dataclass
class Proxy:
    """nginx with config/nginx.conf on 127.0.0.1:port, in front of `upstream`."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    upstream: GunicornServer

    def get(
        self,
        path: str,
        host: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A request through nginx, with Host `host:port` (the client's view)."""
        return request(self.port, path, host=f"{host}:{self.port}", method=method, headers=headers)

    def direct(self, path: str, host: str, headers: Mapping[str, str] | None = None) -> Reply:
        """The same GET straight to gunicorn, with the Host that nginx passes on."""
        upstream_port = int(self.upstream.url.rsplit(":", 1)[1])
        return request(upstream_port, path, host=f"{host}:{self.port}", headers=headers)

    def log(self) -> str:
        """nginx's logs, and the end of gunicorn's, for assertion messages."""
        logs = [
            f"--- {p.name}\n{p.read_text(errors='replace')}"
            for p in sorted(self.directory.glob("*.log"))
        ]
        return "\n".join([*logs, "--- gunicorn", self.upstream.output()[-3000:]])

    def stop(self) -> None:
        """Stop this nginx (the process this object started) and its workers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _substitute(text: str, pattern: str, replacement: str) -> str:
    changed, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"config/nginx.conf should have exactly one match of {pattern!r}"
    return changed


def site_config(upstream_port: int, listen_port: int, cache_dir: Path) -> str:
    """config/nginx.conf with the test's ports and cache directory, and nothing else changed."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    text = _substitute(
        text, r"^(\s*server\s+)127\.0\.0\.1:8000;", rf"\g<1>127.0.0.1:{upstream_port};"
    )
    text = _substitute(text, r"^(\s*listen\s+)80;", rf"\g<1>127.0.0.1:{listen_port};")
    return _substitute(
        text, r"(proxy_cache_path\s+)/var/cache/nginx-feedserver\b", rf"\g<1>{cache_dir}"
    )


def main_config(directory: Path, site: Path) -> str:
    """A whole nginx.conf that keeps every file nginx writes under directory."""
    # Workers of a root master would run as `nobody`, which cannot enter pytest's tmp dirs.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = directory / "temp"
    return f"""{user}daemon off;
master_process on;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} notice;
events {{ worker_connections 256; }}
http {{
    log_format cache '$request $status $upstream_cache_status "$http_accept_encoding"';
    access_log {directory / "access.log"} cache;
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    include {site};
}}
"""


def _wait_until_serving(proxy: Proxy) -> bool:
    deadline = time.monotonic() + NGINX_START_TIMEOUT
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            return False
        try:
            if proxy.get("/healthz", "start.test").status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    proxy.stop()
    raise AssertionError(f"nginx did not answer in time:\n{proxy.log()}")


def launch_nginx(program: str, upstream: GunicornServer, directory: Path) -> Proxy:
    """Start nginx in the foreground in front of upstream and wait until it answers."""
    upstream_port = int(upstream.url.rsplit(":", 1)[1])
    for attempt in range(3):  # another process may take the free port first
        run_dir = directory / f"nginx-{attempt}"
        (run_dir / "temp").mkdir(parents=True)
        port = free_port()
        site = run_dir / "feedserver.conf"
        site.write_text(site_config(upstream_port, port, run_dir / "cache"), encoding="utf-8")
        conf = run_dir / "nginx.conf"
        conf.write_text(main_config(run_dir, site), encoding="utf-8")
        command = [program, "-p", str(run_dir), "-c", str(conf), "-e", str(run_dir / "error.log")]
        with (run_dir / "stdout.log").open("wb") as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
        proxy = Proxy(process, port, run_dir, upstream)
        if _wait_until_serving(proxy):
            return proxy
        proxy.stop()
        if "Address already in use" not in proxy.log() or attempt == 2:
            raise AssertionError(f"nginx exited at start:\n{proxy.log()}")
    raise AssertionError("unreachable")  # pragma: no cover


@pytest.fixture(scope="module")
def proxy(
    nginx_program: str,
    gunicorn_launcher: Callable[..., GunicornServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Proxy]:
    """nginx in front of gunicorn over an unchanging copy of the seeds. Tests share it, so
    each uses a Host of its own: the Host is part of the cache key, so their entries differ."""
    directory = tmp_path_factory.mktemp("nginx")
    seeds = directory / "seeds"
    shutil.copytree(BUNDLED_SEEDS, seeds)
    upstream = gunicorn_launcher(
        seeds, directory / "gunicorn", env={"FEEDSERVER_RELOAD_INTERVAL": str(RELOAD_INTERVAL)}
    )
    try:
        server = launch_nginx(nginx_program, upstream, directory)
        yield server
        server.stop()
    finally:
        upstream.stop()


# --- the cache ---------------------------------------------------------------------------


def test_the_second_request_is_served_from_the_cache_unchanged(proxy: Proxy) -> None:
    host = "hit.test"
    first = proxy.get(FEED, host)
    second = proxy.get(FEED, host)
    assert (first.status, first.cache) == (200, "MISS"), proxy.log()
    assert (second.status, second.cache) == (200, "HIT"), proxy.log()
    assert second.body == first.body
    assert second.entity() == first.entity()
    # ... and both are what gunicorn itself sends.
    direct = proxy.direct(FEED, host)
    assert first.body == direct.body
    assert first.entity() == direct.entity()
    assert first.headers["ETag"].startswith('"') and "W/" not in first.headers["ETag"]
    assert first.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert FEED_CACHE_CONTROL.fullmatch(first.headers["Cache-Control"])
    assert first.headers["Vary"] == FEED_VARY
    assert first.headers.get("Content-Encoding") is None
    # Links name the Host (with its port) the client used, not gunicorn's address.
    assert f"http://{host}:{proxy.port}/topics/ai".encode() in first.body


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Ssl", "on"),
        ("X-Forwarded-Protocol", "ssl"),
        ("X-Forwarded-Host", "evil.test"),
    ],
)
def test_a_client_cannot_choose_the_links_that_others_get_from_the_cache(
    proxy: Proxy, header: str, value: str
) -> None:
    # gunicorn trusts X-Forwarded-* from 127.0.0.1, which nginx is: nginx must set them all.
    host = f"{header.lower()}.spoof.test"
    first = proxy.get(FEED, host, headers={header: value})
    assert (first.status, first.cache) == (200, "MISS"), proxy.log()
    assert f"http://{host}:{proxy.port}/topics/ai".encode() in first.body
    assert f"https://{host}".encode() not in first.body
    assert b"evil.test" not in first.body
    assert first.body == proxy.direct(FEED, host).body


def test_conditional_requests_get_304_through_the_proxy(proxy: Proxy) -> None:
    host = "conditional.test"
    # Conditional on a miss: nginx fetches the whole response and answers 304 itself.
    known = proxy.direct(FEED, host)
    etag, last_modified = known.headers["ETag"], known.headers["Last-Modified"]
    on_miss = proxy.get(FEED, host, headers={"If-None-Match": etag})
    assert (on_miss.status, on_miss.cache, on_miss.body) == (304, "MISS", b""), proxy.log()

    for validator in ({"If-None-Match": etag}, {"If-Modified-Since": last_modified}):
        reply = proxy.get(FEED, host, headers=validator)
        assert (reply.status, reply.cache, reply.body) == (304, "HIT", b""), validator
        assert reply.headers["ETag"] == etag
        assert FEED_CACHE_CONTROL.fullmatch(reply.headers["Cache-Control"])

    assert proxy.get(FEED, host, headers={"If-None-Match": '"other"'}).status == 200
    assert proxy.get(FEED, host, headers={"If-None-Match": f"{etag}, *"}).status == 304
    earlier = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert proxy.get(FEED, host, headers={"If-Modified-Since": earlier}).status == 200
    # The plain variant's ETag does not match the gzip variant.
    assert (
        proxy.get(FEED, host, headers={"If-None-Match": etag, "Accept-Encoding": "gzip"}).status
        == 200
    )
    gz_etag = etag[:-1] + '-gz"'
    gzipped = proxy.get(FEED, host, headers={"If-None-Match": gz_etag, "Accept-Encoding": "gzip"})
    assert gzipped.status == 304


def test_gzip_and_plain_variants_are_cached_apart_and_never_mixed_up(proxy: Proxy) -> None:
    host = "gzip.test"
    plain_body = proxy.direct(FEED, host).body
    gz = {"Accept-Encoding": "gzip"}
    replies = [
        ("gzip", proxy.get(FEED, host, headers=gz)),
        ("plain", proxy.get(FEED, host)),
        ("gzip", proxy.get(FEED, host, headers=gz)),
        ("plain", proxy.get(FEED, host)),
    ]
    assert [r.cache for _, r in replies] == ["MISS", "MISS", "HIT", "HIT"], proxy.log()
    etag = replies[1][1].headers["ETag"]
    for kind, reply in replies:
        assert reply.status == 200
        assert reply.headers["Vary"] == FEED_VARY
        if kind == "gzip":
            assert reply.headers["Content-Encoding"] == "gzip"
            assert reply.headers["ETag"] == etag[:-1] + '-gz"'
            assert gzip.decompress(reply.body) == plain_body
        else:
            assert reply.headers.get("Content-Encoding") is None
            assert reply.headers["ETag"] == etag
            assert reply.body == plain_body

    # Every way of saying "gzip" shares the gzip entry; every way of refusing it, the plain one.
    for accept, compressed in [
        ("gzip, deflate, br", True),
        ("br;q=1.0, GZIP;q=0.8, *;q=0.1", True),
        ("*", True),
        ("identity", False),
        ("gzip;q=0, deflate", False),
        ("deflate, *;q=0", False),
        ("br", False),
    ]:
        reply = proxy.get(FEED, host, headers={"Accept-Encoding": accept})
        assert reply.cache == "HIT", accept
        assert (reply.headers.get("Content-Encoding") == "gzip") is compressed, accept
        # ... exactly what feedserver sends for the header nginx passes on: gzip or none.
        direct = proxy.direct(FEED, host, headers=gz if compressed else None)
        assert direct.entity() == reply.entity(), accept
        assert (gzip.decompress(reply.body) if compressed else reply.body) == plain_body, accept


CHROME_NAVIGATION = {
    "Sec-Fetch-Dest": "document",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
}
FEEDPARSER_ACCEPT = (
    "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,"
    "application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1"
)


def test_a_browser_gets_the_preview_and_a_reader_the_feed_each_cached_apart(
    proxy: Proxy,
) -> None:
    host = "view.test"
    reader = {"Accept": FEEDPARSER_ACCEPT}
    replies = [
        ("feed", proxy.get(FEED, host, headers=reader)),
        ("html", proxy.get(FEED, host, headers=CHROME_NAVIGATION)),
        ("feed", proxy.get(FEED, host, headers=reader)),
        ("html", proxy.get(FEED, host, headers=CHROME_NAVIGATION)),
        ("feed", proxy.get(FEED, host)),  # no Accept at all
        # Accept alone, as a browser without Sec-Fetch-* sends it.
        ("html", proxy.get(FEED, host, headers={"Accept": "text/html,*/*;q=0.8"})),
        # text/html named, but not preferred: the feed.
        ("feed", proxy.get(FEED, host, headers={"Accept": "application/rss+xml, text/html"})),
    ]
    assert [r.cache for _, r in replies[:2]] == ["MISS", "MISS"], proxy.log()
    assert all(r.cache == "HIT" for _, r in replies[2:]), [r.cache for _, r in replies]
    feed = replies[0][1]
    page = replies[1][1]
    assert feed.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert feed.headers["ETag"] != page.headers["ETag"]
    for kind, reply in replies:
        assert reply.status == 200
        assert reply.body == (page.body if kind == "html" else feed.body), kind
        assert reply.headers["Vary"] == FEED_VARY
    # What each variant's cached copy is: exactly what gunicorn sends for that request.
    assert proxy.direct(FEED, host, headers=reader).body == feed.body
    assert proxy.direct(FEED, host, headers=CHROME_NAVIGATION).body == page.body
    # A browser revalidating its preview gets a 304; with the feed's ETag, the preview.
    again = proxy.get(
        FEED, host, headers={**CHROME_NAVIGATION, "If-None-Match": page.headers["ETag"]}
    )
    assert again.status == 304, proxy.log()
    other = proxy.get(
        FEED, host, headers={**CHROME_NAVIGATION, "If-None-Match": feed.headers["ETag"]}
    )
    assert other.status == 200 and other.body == page.body


def test_head_has_the_headers_of_get(proxy: Proxy) -> None:
    host = "head.test"
    head = proxy.get(FEED, host, method="HEAD")
    get = proxy.get(FEED, host)
    assert (head.status, head.cache, head.body) == (200, "MISS", b""), proxy.log()
    assert (get.status, get.cache) == (200, "HIT"), proxy.log()
    assert head.entity() == get.entity()
    assert int(head.headers["Content-Length"]) == len(get.body)
    again = proxy.get(FEED, host, method="HEAD")
    assert (again.cache, again.body, again.entity()) == ("HIT", b"", get.entity())


@pytest.mark.parametrize("path", ["/topics.json", "/providers/hothardware.com.atom", "/"])
def test_other_resources_are_cached_too(proxy: Proxy, path: str) -> None:
    host = "others.test"
    first, second = proxy.get(path, host), proxy.get(path, host)
    assert (first.status, first.cache, second.cache) == (200, "MISS", "HIT"), proxy.log()
    assert (second.body, second.entity()) == (first.body, first.entity())


def test_healthz_is_never_cached(proxy: Proxy) -> None:
    for _ in range(3):
        reply = proxy.get("/healthz", "health.test")
        assert reply.status == 200
        assert reply.cache in (None, "BYPASS")
        assert "no-store" in reply.headers["Cache-Control"]


def test_error_statuses_pass_through_uncached(proxy: Proxy) -> None:
    host = "errors.test"
    for _ in range(2):
        missing = proxy.get("/topics/nope.rss", host)
        assert missing.status == 404
        assert missing.cache == "MISS"  # never stored: no-store, and no proxy_cache_valid
    posted = proxy.get(FEED, host, method="POST", headers={"Content-Length": "0"})
    assert posted.status == 405
    assert posted.headers["Allow"] == "GET, HEAD"
    assert proxy.get("/topics/ai.rss?limit=0", host).status == 400


# --- a change reaches clients --------------------------------------------------------------


def wait_until_not_hit(proxy: Proxy, host: str, seconds: float) -> Reply:
    """The first reply that is not a cache HIT, or the last within seconds."""
    deadline = time.monotonic() + seconds
    reply = proxy.get(FEED, host)
    while reply.cache == "HIT" and time.monotonic() < deadline:
        time.sleep(0.05)
        reply = proxy.get(FEED, host)
    return reply


def edit_title(seed: Path) -> None:
    """Give the seed NEW_TITLE, with a modification time of now."""
    text = seed.read_text(encoding="utf-8")
    assert OLD_TITLE in text
    seed.write_text(text.replace(OLD_TITLE, f'title: "{NEW_TITLE}"'), encoding="utf-8")
    now = time.time()
    os.utime(seed, (now, now))


def first_new_replies(
    proxy: Proxy, host: str, validators: Mapping[str, Mapping[str, str]], expected: float
) -> dict[str, Reply]:
    """Ask with each kind's old validators until each gets a 200 (a 304 until then), for
    expected seconds plus FRESHNESS_SLACK at most: the first 200 of each kind."""
    changed = time.monotonic()
    limit = expected + FRESHNESS_SLACK
    latest: dict[str, Reply] = {}
    while len(latest) < len(validators) and time.monotonic() - changed < limit:
        for kind, headers in validators.items():
            if kind in latest:
                continue
            reply = proxy.get(FEED, host, headers=dict(headers))
            if reply.status == 200:
                latest[kind] = reply
            else:
                assert reply.status == 304, (kind, reply.status)
        time.sleep(0.05)
    missing = set(validators) - set(latest)
    assert not missing, f"{limit}s after the edit, still 304 for {missing}:\n{proxy.log()}"
    return latest


def test_a_changed_seed_reaches_clients_within_reload_interval_plus_cache_time(
    nginx_program: str,
    start_gunicorn: Callable[..., GunicornServer],
    seeds_dir: Path,
    tmp_path: Path,
) -> None:
    # As deployed: the shipped gunicorn settings, whose workers reload from the start.
    upstream = start_gunicorn(
        seeds_dir,
        "-c",
        str(ROOT / "config" / "gunicorn.conf.py"),
        env={"FEEDSERVER_RELOAD_INTERVAL": str(RELOAD_INTERVAL)},
    )
    proxy = launch_nginx(nginx_program, upstream, tmp_path / "nginx")
    try:
        host = "fresh.test"
        gz = {"Accept-Encoding": "gzip"}
        # Both variants warm in the cache before the edit.
        before = proxy.get(FEED, host)
        before_gz = proxy.get(FEED, host, headers=gz)
        assert proxy.get(FEED, host).cache == "HIT"
        old_etag, old_gz_etag = before.headers["ETag"], before_gz.headers["ETag"]
        max_age = shared_max_age(before.headers["Cache-Control"])
        assert NEW_TITLE.encode() not in before.body

        # Once max-age is over, nginx asks gunicorn with If-None-Match, gets a 304 and keeps
        # its copy (proxy_cache_revalidate): REVALIDATED, same body, same ETag.
        again = wait_until_not_hit(proxy, host, max_age + 2.5)
        assert again.cache == "REVALIDATED", proxy.log()
        assert (again.body, again.entity()) == (before.body, before.entity())

        edit_title(seeds_dir / EDITED_SEED)
        # Readers keep asking with the validators they have; each must get the new feed.
        validators = {
            "plain": {"If-None-Match": old_etag},
            "gzip": {"If-None-Match": old_gz_etag, **gz},
        }
        latest = first_new_replies(proxy, host, validators, RELOAD_INTERVAL + max_age)

        plain, gzipped = latest["plain"], latest["gzip"]
        assert NEW_TITLE.encode() in plain.body
        assert gzip.decompress(gzipped.body) == plain.body
        new_etag = plain.headers["ETag"]
        assert new_etag != old_etag
        assert gzipped.headers["ETag"] == new_etag[:-1] + '-gz"'
        # The new validators now earn 304s, the old ones full responses, from the cache.
        assert proxy.get(FEED, host, headers={"If-None-Match": new_etag}).status == 304
        stale = proxy.get(FEED, host, headers={"If-None-Match": old_etag})
        assert (stale.status, stale.headers["ETag"]) == (200, new_etag)
        assert proxy.get(FEED, host).body == plain.body
    finally:
        proxy.stop()
