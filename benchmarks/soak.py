"""Soak test: concurrent clients against a running gunicorn while another process edits,
breaks, unpublishes, deletes and adds seed files, with a one-second reload interval.

    python -m benchmarks.soak [--seconds 60] [--clients 8] [--url URL --seeds DIR]

By default it writes generated seed files into a temporary directory and starts
`python -m gunicorn -w 2 wsgi:app` over them from the repository. With `--url` it drives a
server that is already running; add `--seeds DIR` (that server's seeds directory) to edit
it too: every file the editor changed is restored, and every file it added is removed.

Every response must be free of 5xx and connection errors and must parse as the format its
Content-Type claims (RSS and Atom with feedparser and no bozo flag, JSON, HTML, OPML). A 304
is allowed only for a conditional request. A 404 is allowed only for a topic or provider
URL: one the server listed at the start must answer 200 again once the edits are undone,
one that appeared during the run (the topic of an added file) may be gone for good. The
gunicorn log must show no traceback and no worker timeout. Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import multiprocessing
import queue
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

import feedparser

from benchmarks import servers
from benchmarks.generate import WORDS, generate

SEED_SUFFIXES = (".txt", ".md", ".yaml", ".yml")
REQUEST_TIMEOUT = 15.0
START_TIMEOUT = 30.0
MAX_KEPT_FAILURES = 100  # failure messages kept; all are counted

FEED_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
}
SITE_PATHS = {
    "/": "text/html",
    "/feed.rss": FEED_TYPES[".rss"],
    "/feed.atom": FEED_TYPES[".atom"],
    "/feed.json": FEED_TYPES[".json"],
    "/topics.json": "application/json",
    "/providers.json": "application/json",
    "/feeds.opml": "text/x-opml",
    "/healthz": "application/json",
    "/static/style.css": "text/css",
}
_COLLECTION_PATH = re.compile(r"^/(topics|providers)/[^/]+$")
_FEED_PATH = re.compile(r"^/(?:feed|topics/[^/]+|providers/[^/]+)\.(?:rss|atom|json)$")


# --- what is requested ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A URL path to request, and what a 200 answer must be."""

    path: str
    content_type: str  # the media type a 200 must carry, without parameters
    collection: bool  # a topic or provider URL, which edits may make disappear
    baseline: bool  # listed by the server before any edit
    articles: int = 0  # articles it had when discovered, for asking page 2

    @property
    def is_feed(self) -> bool:
        """Whether the path is a feed, which takes query parameters."""
        return bool(_FEED_PATH.match(self.path))


def _target_for(path: str, baseline: bool, articles: int = 0) -> Target | None:
    """The target of a site path, or None for a path that is not a page, feed or listing."""
    if path in SITE_PATHS:
        return Target(path, SITE_PATHS[path], False, baseline, articles)
    if not _COLLECTION_PATH.match(path):
        return None
    if _FEED_PATH.match(path):
        extension = path[path.rindex(".") :]
        return Target(path, FEED_TYPES[extension], True, baseline, articles)
    return Target(path, "text/html", True, baseline, articles)


class TargetPool:
    """The URLs clients choose from; it grows as listings show new topics and providers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._site: list[Target] = []
        self._collections: list[Target] = []
        self._known: set[str] = set()

    def add(self, target: Target) -> None:
        """Add a target unless its path is known already."""
        with self._lock:
            if target.path in self._known:
                return
            self._known.add(target.path)
            (self._collections if target.collection else self._site).append(target)

    def add_url(self, url: str, baseline: bool, articles: int = 0) -> None:
        """Add the target of a URL the server listed (whatever its host: the server may have
        a base_url); URLs with a query and paths that are not the site's are ignored."""
        parts = urlsplit(url)
        if parts.query:
            return
        target = _target_for(parts.path, baseline, articles)
        if target is not None:
            self.add(target)

    def learn(self, path: str, content_type: str, body: bytes) -> None:
        """Add what a listing or the OPML names, after it passed its checks."""
        if content_type == "application/json" and path in ("/topics.json", "/providers.json"):
            for item in json.loads(body):
                for url in (item["url"], *item["feeds"].values()):
                    self.add_url(url, baseline=False, articles=int(item["count"]))
        elif content_type == "text/x-opml":
            for outline in ElementTree.fromstring(body).iter("outline"):
                for attribute in ("xmlUrl", "htmlUrl"):
                    if attribute in outline.attrib:
                        self.add_url(outline.attrib[attribute], baseline=False)

    def choose(self, rng: random.Random) -> Target:
        """A site-wide target one time in four, else a topic or provider URL."""
        with self._lock:
            if not self._collections or rng.random() < 0.25:
                return rng.choice(self._site)
            return rng.choice(self._collections)

    def __len__(self) -> int:
        with self._lock:
            return len(self._site) + len(self._collections)


def query_for(target: Target, rng: random.Random) -> str:
    """A query string for a feed now and then (`?...` or empty): paging, search, sorting."""
    if not target.is_feed or rng.random() < 0.5:
        return ""
    choices: list[dict[str, Any]] = [
        {"limit": rng.choice((1, 5, 20))},
        {"q": rng.choice(WORDS)},
        {"q": " ".join(rng.sample(WORDS, 2))},
        {"sort": rng.choice(("date", "heat", "quality"))},
        {"min_quality": rng.choice((1, 50, 100))},
        {"sort": "heat", "limit": 3, "min_quality": 10},
    ]
    if target.articles > 5:
        choices.append({"page": 2, "limit": 5})
    return "?" + urlencode(rng.choice(choices))


# --- checking one response -------------------------------------------------------------------


def _feed_problem(body: bytes, wanted: str) -> str | None:
    parsed = feedparser.parse(body)
    if parsed.bozo:
        return f"feedparser: {parsed.bozo_exception}"
    if parsed.version != wanted:
        return f"feedparser reads version {parsed.version!r}, not {wanted}"
    return None


def _json_feed_problem(body: bytes) -> str | None:
    feed = json.loads(body)
    if feed.get("version") != "https://jsonfeed.org/version/1.1":
        return "JSON Feed without its version"
    if not isinstance(feed.get("items"), list):
        return "JSON Feed without an items list"
    return None


def _json_problem(body: bytes) -> str | None:
    json.loads(body)
    return None


def _html_problem(body: bytes) -> str | None:
    return None if b"</html>" in body else "HTML without </html>"


def _opml_problem(body: bytes) -> str | None:
    return None if ElementTree.fromstring(body).tag == "opml" else "OPML whose root is not <opml>"


def _text_problem(body: bytes) -> str | None:
    body.decode("utf-8")
    return None


# Each media type the server sends, and what says why a body of it does not parse.
BODY_CHECKS: dict[str, Callable[[bytes], str | None]] = {
    FEED_TYPES[".rss"]: lambda body: _feed_problem(body, "rss20"),
    FEED_TYPES[".atom"]: lambda body: _feed_problem(body, "atom10"),
    FEED_TYPES[".json"]: _json_feed_problem,
    "application/json": _json_problem,
    "text/html": _html_problem,
    "text/x-opml": _opml_problem,
    "text/plain": _text_problem,
    "text/css": _text_problem,
}


def body_problem(content_type: str, body: bytes) -> str | None:
    """Why a body does not parse as its media type claims, or None when it does."""
    check = BODY_CHECKS.get(content_type)
    if check is None:
        return f"unexpected Content-Type {content_type!r}"
    try:
        return check(body)
    except (ValueError, ElementTree.ParseError) as error:  # JSONDecodeError and decoding too
        return f"does not parse as {content_type}: {error}"


@dataclass(frozen=True, slots=True)
class Response:
    """What the server answered to one request, as sent."""

    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


def fetch(host: str, port: int, path: str, headers: Mapping[str, str]) -> Response:
    """GET a path on a new connection (as feed readers do); raises OSError or HTTPException."""
    connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", path, headers=dict(headers))
        answer = connection.getresponse()
        body = answer.read()
        found = {name.lower(): value for name, value in answer.getheaders()}
    finally:
        connection.close()
    return Response(answer.status, found, body)


def status_of(host: str, port: int, path: str) -> tuple[int, bytes]:
    """The status and body of a plain GET; status 0 when the request failed."""
    try:
        response = fetch(host, port, path, {})
    except (OSError, http.client.HTTPException):
        return 0, b""
    return response.status, response.body


def decoded_body(response: Response, sent: Mapping[str, str]) -> tuple[bytes, str | None]:
    """The body with any gzip undone, and why the encoding is wrong (None when it is not)."""
    encoding = response.headers.get("content-encoding")
    if encoding is None:
        return response.body, None
    if encoding != "gzip" or sent.get("Accept-Encoding") != "gzip":
        return response.body, f"Content-Encoding {encoding!r} that the client did not ask for"
    try:
        return gzip.decompress(response.body), None
    except (OSError, EOFError) as error:
        return response.body, f"gzip body does not decompress: {error}"


@dataclass(slots=True)
class ClientStats:
    """One client's counts, merged into the result when all clients are done."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    failure_count: int = 0
    missing: dict[str, Target] = field(default_factory=dict)  # 404s of topic/provider URLs

    def fail(self, message: str) -> None:
        """Count a failure, keeping the first messages."""
        self.failure_count += 1
        if len(self.failures) < MAX_KEPT_FAILURES:
            self.failures.append(message)


def check_response(
    target: Target, path: str, sent: Mapping[str, str], response: Response, body: bytes
) -> str | None:
    """Why a response (with its decoded body) is wrong for the request, or None."""
    status = response.status
    media = response.headers.get("content-type", "").split(";")[0].strip()
    if status >= 500:
        return f"{status} for {path}"
    if status == 304:
        if "If-None-Match" not in sent:
            return f"304 for an unconditional request of {path}"
        return f"304 with a body for {path}" if body else None
    if status == 404:
        if not target.collection:
            return f"404 for {path}, which is not a topic or provider URL"
        problem = body_problem(media, body)
        return f"404 for {path}: {problem}" if problem else None
    if status != 200:
        return f"{status} for {path}"
    if media != target.content_type:
        return f"{path} is {media!r}, not {target.content_type!r}"
    problem = body_problem(media, body)
    return f"{path}: {problem}" if problem else None


class Client:
    """One simulated reader: requests random targets until the deadline, checking each."""

    def __init__(
        self, host: str, port: int, pool: TargetPool, deadline: float, rng: random.Random
    ) -> None:
        self.host = host
        self.port = port
        self.pool = pool
        self.deadline = deadline
        self.rng = rng
        self.stats = ClientStats()
        self._etags: dict[str, str] = {}

    def run(self) -> None:
        """Request until the deadline; a crash of the client itself is a failure too."""
        try:
            while time.monotonic() < self.deadline:
                self.request_one()
        except Exception as error:  # report it rather than lose the thread silently
            self.stats.fail(f"client crashed: {type(error).__name__}: {error}")

    def request_one(self) -> None:
        """Request one target, sometimes gzipped, sometimes conditional, and check it."""
        rng = self.rng
        target = self.pool.choose(rng)
        path = target.path + query_for(target, rng)
        headers = {"Accept": "*/*"}
        if rng.random() < 0.3:
            headers["Accept-Encoding"] = "gzip"
        if path in self._etags and rng.random() < 0.3:
            etag = self._etags[path]
            # The gzip form has its own validator.
            gzipped = etag.endswith('-gz"')
            headers["If-None-Match"] = etag
            if gzipped:
                headers["Accept-Encoding"] = "gzip"
            else:
                headers.pop("Accept-Encoding", None)
        self.stats.requests += 1
        try:
            response = fetch(self.host, self.port, path, headers)
        except (OSError, http.client.HTTPException) as error:
            self.stats.fail(f"connection error for {path}: {type(error).__name__}: {error}")
            return
        self.stats.statuses[response.status] += 1
        body, problem = decoded_body(response, headers)
        problem = problem or check_response(target, path, headers, response, body)
        if problem:
            self.stats.fail(problem)
            return
        if response.status == 404:
            self.stats.missing[path] = target
        elif response.status == 200:
            if "etag" in response.headers:
                self._etags[path] = response.headers["etag"]
            self.pool.learn(path, target.content_type, body)


# --- the editor process ------------------------------------------------------------------------

BROKEN_YAML = "---\ntitle: [this list never closes\npublished: true\n---\n"
_TITLE_LINE = re.compile(rb"^title:.*$", re.MULTILINE)
_PUBLISHED_LINE = re.compile(rb"^published:\s*true\s*$", re.MULTILINE)


def new_document(number: int) -> str:
    """A valid published seed document whose topic and provider no original file has."""
    when = f"2021-{number % 12 + 1:02d}-{number % 28 + 1:02d}T10:00:00Z"
    return (
        "---\n"
        f'title: "Soak article {number}"\n'
        f'excerpt: "Written by the soak editor, number {number}."\n'
        f"publishedDateTime: {when}\n"
        f'webUrl: "https://soak{number % 5}.example.net/articles/{number}"\n'
        "published: true\n"
        f"quality: {number % 100}\n"
        f"heat: {number % 150}\n"
        f"provider:\n  name: Soak Wire {number % 5}\n  domain: soak{number % 5}.example.net\n"
        f"topics:\n  - Soak topic {number % 7}\n  - {WORDS[number % len(WORDS)].title()}\n"
        "---\n"
    )


class SeedEditor:
    """Changes seed files the way editors (and broken tools) do, and can undo it all."""

    OPERATIONS = ("edit_title", "break_yaml", "unpublish", "delete", "add", "restore")

    def __init__(self, seeds: Path, rng: random.Random) -> None:
        self.seeds = seeds
        self.rng = rng
        self.files = sorted(
            path
            for path in seeds.rglob("*")
            if path.suffix in SEED_SUFFIXES and not path.name.startswith(".") and path.is_file()
        )
        if not self.files:
            raise ValueError(f"no seed files under {seeds}")
        self.added_dir = seeds / "soak-added"
        self.originals: dict[Path, bytes] = {}  # files changed or deleted, as they were
        self.added: list[Path] = []
        self.counts: Counter[str] = Counter()
        self._added_total = 0

    def _change(self, edit: Callable[[bytes], bytes | None]) -> None:
        """Apply edit to a random original file's current bytes; None deletes the file."""
        path = self.rng.choice(self.files)
        if path not in self.originals:
            self.originals[path] = path.read_bytes()
        current = path.read_bytes() if path.exists() else self.originals[path]
        changed = edit(current)
        if changed is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(changed)

    def edit_title(self) -> None:
        """Give a file a new title."""
        stamp = f'title: "Edited by the soak editor {self.counts["edit_title"]}"'
        self._change(lambda text: _TITLE_LINE.sub(stamp.encode(), text, count=1))

    def break_yaml(self) -> None:
        """Replace a file with YAML that does not parse."""
        self._change(lambda text: BROKEN_YAML.encode())

    def unpublish(self) -> None:
        """Flip a file's `published: true` to false."""
        self._change(lambda text: _PUBLISHED_LINE.sub(b"published: false", text, count=1))

    def delete(self) -> None:
        """Delete a file."""
        self._change(lambda text: None)

    def add(self) -> None:
        """Write a new file with a topic and a provider of its own."""
        self.added_dir.mkdir(exist_ok=True)
        path = self.added_dir / f"soak-{self._added_total}.txt"
        path.write_text(new_document(self._added_total), encoding="utf-8")
        self.added.append(path)
        self._added_total += 1

    def restore(self) -> None:
        """Undo every change made so far."""
        for path, original in self.originals.items():
            path.write_bytes(original)
        self.originals.clear()
        for path in self.added:
            path.unlink(missing_ok=True)
        self.added.clear()

    def step(self, operation: str) -> None:
        """Perform one operation and count it."""
        getattr(self, operation)()
        self.counts[operation] += 1

    def finish(self) -> None:
        """Restore everything and remove the folder of added files."""
        self.restore()
        if self.added_dir.is_dir() and not any(self.added_dir.iterdir()):
            self.added_dir.rmdir()


def edit_seeds(seeds: str, stop: Event, seed: int, results: Queue[dict[str, int]]) -> None:
    """The editor process: cycle through the operations, pausing 0.05-0.4 s after each,
    until stop is set; then undo everything and report the counts."""
    editor = SeedEditor(Path(seeds), random.Random(seed))
    try:
        while not stop.is_set():
            for operation in SeedEditor.OPERATIONS:
                editor.step(operation)
                if stop.wait(editor.rng.uniform(0.05, 0.4)):
                    break
    finally:
        editor.finish()
        results.put(dict(editor.counts))


# --- the server ------------------------------------------------------------------------------


@contextmanager
def gunicorn(seeds: Path, logs: Path, workers: int, interval: int) -> Iterator[tuple[str, Path]]:
    """Run `python -m gunicorn -w N wsgi:app` from the repository over seeds; yield its URL
    and the file its log goes to."""
    server = servers.start(
        "wsgi:app",
        logs,
        "-w",
        str(workers),
        env={"FEEDSERVER_SEEDS_DIR": str(seeds), "FEEDSERVER_RELOAD_INTERVAL": str(interval)},
    )
    try:
        server.wait_ready(timeout=START_TIMEOUT)
        yield f"http://{servers.HOST}:{server.port}", server.log
    finally:
        server.stop()


def log_problems(log: Path) -> list[str]:
    """Lines of a gunicorn log that show a crash: tracebacks, worker timeouts and exits."""
    markers = ("Traceback", "WORKER TIMEOUT", "was sent SIGKILL", "Worker exiting", "[ERROR]")
    lines = log.read_text(errors="replace").splitlines()
    return [f"gunicorn log: {line}" for line in lines if any(m in line for m in markers)]


# --- the run -----------------------------------------------------------------------------------


@dataclass(slots=True)
class SoakResult:
    """What a soak run saw."""

    seconds: float
    clients: int
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    failure_count: int = 0
    edits: dict[str, int] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)  # URLs of topics that edits removed
    urls: int = 0  # distinct targets known at the end

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return self.failure_count == 0

    @property
    def requests_per_second(self) -> float:
        """Requests per second of load."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def fail(self, message: str) -> None:
        """Count a failure, keeping the first messages."""
        self.failure_count += 1
        if len(self.failures) < MAX_KEPT_FAILURES:
            self.failures.append(message)

    def summary(self) -> str:
        """A few lines for a person."""
        statuses = ", ".join(f"{code}={n}" for code, n in sorted(self.statuses.items()))
        edits = ", ".join(f"{name}={n}" for name, n in self.edits.items()) or "none"
        lines = [
            f"soak: {self.seconds:.1f} s, {self.clients} clients, {self.urls} URLs",
            f"requests: {self.requests} ({self.requests_per_second:.1f}/s)",
            f"statuses: {statuses or 'none'}",
            f"edits: {edits}",
            f"topic/provider URLs gone after edits: {len(self.gone)}",
            f"failures: {self.failure_count}",
        ]
        lines += [f"  {message}" for message in self.failures[:20]]
        if self.failure_count > 20:
            lines.append(f"  ... and {self.failure_count - 20} more")
        return "\n".join(lines)


def _discover(host: str, port: int) -> tuple[TargetPool, int]:
    """The baseline: every site URL, and every topic and provider feed and page that
    /topics.json, /providers.json and /feeds.opml name before any edit.
    Returns the pool and how many articles /healthz reports."""
    pool = TargetPool()
    answers = {}
    for path in ("/healthz", "/topics.json", "/providers.json", "/feeds.opml"):
        status, body = status_of(host, port, path)
        if status != 200:
            raise RuntimeError(f"{path} answers {status or 'nothing'} before any edit")
        answers[path] = body
    articles = int(json.loads(answers["/healthz"])["articles"])
    for path, content_type in SITE_PATHS.items():
        pool.add(Target(path, content_type, False, True, articles))
    for listing in ("/topics.json", "/providers.json"):
        for item in json.loads(answers[listing]):
            for url in (item["url"], *item["feeds"].values()):
                pool.add_url(url, baseline=True, articles=int(item["count"]))
    for outline in ElementTree.fromstring(answers["/feeds.opml"]).iter("outline"):
        for attribute in ("xmlUrl", "htmlUrl"):
            if attribute in outline.attrib:
                pool.add_url(outline.attrib[attribute], baseline=True)
    return pool, articles


def _recheck(
    host: str, port: int, missing: dict[str, Target], articles: int, result: SoakResult
) -> None:
    """After the edits are undone: baseline URLs that were 404 answer 200 again, and
    /healthz counts the baseline's articles, in every worker (within a few intervals)."""
    deadline = time.monotonic() + 10.0
    pending = {path for path, target in missing.items() if target.baseline}
    result.gone = sorted(path for path, target in missing.items() if not target.baseline)
    settled = 0
    while time.monotonic() < deadline and (pending or settled < 8):
        for path in sorted(pending):
            if status_of(host, port, path)[0] == 200:
                pending.discard(path)
        status, body = status_of(host, port, "/healthz")
        counted = json.loads(body)["articles"] if status == 200 else None
        settled = settled + 1 if counted == articles else 0
        time.sleep(0.1)
    for path in sorted(pending):
        result.fail(f"404 for {path}, listed before the edits, after they were undone")
    if settled < 8:
        result.fail(f"/healthz does not count the {articles} articles of before the edits")


@dataclass
class _Editor:
    """The process that edits the served seeds during the run, and how to talk to it."""

    process: BaseProcess
    stop: Event
    edits: Queue[dict[str, int]]

    @classmethod
    def start(cls, stack: ExitStack, seeds: Path, seed: int) -> _Editor:
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        edits: Queue[dict[str, int]] = context.Queue()
        process = context.Process(
            target=edit_seeds, args=(str(seeds), stop, seed, edits), name="soak-editor"
        )
        process.start()
        # Whatever happens next, the editor stops and undoes its changes.
        stack.callback(process.join, 30)
        stack.callback(stop.set)
        return cls(process, stop, edits)

    def finish(self, result: SoakResult) -> None:
        """Stop it, and record its counts, or that it failed."""
        self.stop.set()
        try:
            result.edits = self.edits.get(timeout=30)
        except queue.Empty:
            result.fail("the editor process reported nothing")
        self.process.join(timeout=30)
        if self.process.exitcode != 0:
            result.fail(f"the editor process exited with {self.process.exitcode}")


def _serve_generated(
    stack: ExitStack,
    workdir: Path,
    seeds: Path | None,
    files: int,
    *,
    workers: int,
    interval: int,
    seed: int,
) -> tuple[str, Path, Path]:
    """Start gunicorn over seeds (generated into workdir when None) until the stack closes:
    its URL, its log and the seeds."""
    if seeds is None:
        seeds = workdir / "seeds"
        seeds.mkdir()
        generate(seeds, files, seed=seed, topics=max(10, files // 5), providers=30)
    url, log = stack.enter_context(gunicorn(seeds, workdir, workers, interval))
    return url, log, seeds


def _read_for(
    host: str, port: int, pool: TargetPool, clients: int, seconds: float, seed: int
) -> list[Client]:
    """Run the clients, each in a thread, until seconds have passed."""
    started = time.monotonic()
    readers = [
        Client(host, port, pool, started + seconds, random.Random(seed * 1000 + n))
        for n in range(clients)
    ]
    threads = [
        # Daemons: an interrupted run ends without waiting for the deadline.
        threading.Thread(target=r.run, name=f"soak-client-{n}", daemon=True)
        for n, r in enumerate(readers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():  # in slices, so that Ctrl-C is seen at once
            thread.join(0.5)
    return readers


def _tally(result: SoakResult, readers: list[Client]) -> dict[str, Target]:
    """Add up what the clients saw; returns the URLs they found gone."""
    missing: dict[str, Target] = {}
    for reader in readers:
        result.requests += reader.stats.requests
        result.statuses.update(reader.stats.statuses)
        for message in reader.stats.failures:
            result.fail(message)
        result.failure_count += reader.stats.failure_count - len(reader.stats.failures)
        missing.update(reader.stats.missing)
    return missing


def run_soak(
    seconds: float,
    clients: int,
    *,
    url: str | None = None,
    seeds: Path | None = None,
    files: int = 300,
    workers: int = 2,
    interval: int = 1,
    seed: int = 1,
    workdir: Path | None = None,
) -> SoakResult:
    """Run the soak and return what it saw.

    Without url, gunicorn is started over `seeds` (generated files in a temporary folder
    when seeds is None) and stopped at the end. With url, that server is driven, and seeds,
    when given, is the directory it serves, edited during the run and restored after it.
    """
    result = SoakResult(seconds=0.0, clients=clients)
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        log: Path | None = None
        if url is None:
            url, log, seeds = _serve_generated(
                stack, workdir, seeds, files, workers=workers, interval=interval, seed=seed
            )
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        pool, articles = _discover(host, port)
        editor = None if seeds is None else _Editor.start(stack, seeds, seed)

        started = time.monotonic()
        readers = _read_for(host, port, pool, clients, seconds, seed)
        result.seconds = time.monotonic() - started
        missing = _tally(result, readers)
        result.urls = len(pool)

        if editor is not None:
            editor.finish(result)
            _recheck(host, port, missing, articles, result)
        else:
            result.gone = sorted(missing)
        if log is not None:
            for problem in log_problems(log):
                result.fail(problem)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line: run the soak, print the summary, exit 1 on any failure."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--url", help="drive this running server instead of starting one")
    parser.add_argument("--seeds", type=Path, help="seeds directory to serve and edit")
    parser.add_argument("--files", type=int, default=300, help="generated seed files")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--interval", type=int, default=1, help="reload interval in seconds")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    args = parser.parse_args(argv)
    if args.url and args.seeds is None:
        print("soak: no --seeds given, so nothing is edited during the run", file=sys.stderr)
    result = run_soak(
        args.seconds,
        args.clients,
        url=args.url,
        seeds=args.seeds,
        files=args.files,
        workers=args.workers,
        interval=args.interval,
        seed=args.seed,
    )
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
