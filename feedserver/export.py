"""Static export: every route the server answers without a query, written as files at the
same paths, so that a CDN, an object store or any web server can carry the traffic.

The bytes come from the app itself (its WSGI stack, called in-process: selfrequest.py), so
a file is identical to what the server returns for the same catalog and base_url. A build
is incremental and atomic: a file whose inputs (inputs.py: the settings, the code and the
collection it shows) are those the manifest recorded for it, and which is still there at
its size, is not rendered again; a rendered file is rewritten only when its bytes change,
each by a temporary file renamed into place; files of topics or providers that no longer
exist are removed. The files to render are split between two processes where there are
two cores (forked once the catalog is loaded).

A build never destroys a good site: it refuses (changing nothing) when the seeds directory
cannot be read or when it would remove every article of the previous build; a route that
fails, or a file that cannot be written, is reported and skipped while its old file stays;
only plain relative paths inside OUTDIR are ever taken from the manifest to delete; and no
symbolic link below OUTDIR is followed to write, read or remove a file."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from flask import Flask

from . import fragments, inputs, prerender
from .catalog import ALL, PROVIDER, TOPIC, Catalog
from .config import SETTINGS_EXTENSION
from .redirects import FEED_ALIASES
from .selfrequest import RouteFailed, SelfRequests
from .store import CatalogStore
from .urls import FAVICON, FEED_EXTENSIONS, LISTINGS, PATHS, Urls

logger = logging.getLogger(__name__)

# Lists the files a build wrote, so the next build removes only its own stale files.
MANIFEST = ".feedserver-manifest"
PAGES = (PATHS.index(TOPIC), PATHS.index(PROVIDER))
STATIC = (
    PATHS.static("style.css"),
    PATHS.static("favicon.svg"),
    FAVICON,
    PATHS.static("feed-icon.png"),
)
# A feed's HTML preview (what a browser gets at the feed's URL) is written beside the feed
# as `<feed file>.html`, for a host that rewrites browser navigations to it (see README).
PREVIEW_SUFFIX = ".html"
BROWSER = {"Sec-Fetch-Dest": "document", "Accept": "text/html"}
# Netlify and Cloudflare Pages read redirects from this file at the top of the site.
REDIRECTS_FILE = "_redirects"


@dataclass(frozen=True, slots=True)
class Route:
    """One file of the export: the request whose response it holds, and its name."""

    path: str
    name: str
    headers: dict[str, str] = field(default_factory=dict)
    # What the file is built from (inputs.py): a collection's `kind:key`, or the catalog.
    source: str = inputs.CATALOG

    @property
    def label(self) -> str:
        """The route as a report names it: its path, and the variant a browser gets."""
        return f"{self.path} (preview)" if self.headers else self.path


class BuildRefused(Exception):
    """A build that would damage the site: nothing was changed; the message is one line."""


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What one build did; `failed` has one line per route or file that could not be made."""

    files: int
    written: int
    unchanged: int
    removed: int
    failed: tuple[str, ...] = ()
    skipped: int = 0  # of the unchanged, those not rendered again: their inputs were the same


def routes(catalog: Catalog) -> Iterator[Route]:
    """Every path the server answers without a query string (/healthz aside), with the file
    it is written to: a page becomes a folder's index.html, a feed's preview `<feed>.html`,
    and the feed names other software uses (`rss.xml`, `atom.xml`, ...) copies of the feed."""
    for collection in (catalog.everything, *catalog.topics.values(), *catalog.providers.values()):
        page = PATHS.page(collection)
        source = f"{collection.kind}:{collection.key}"
        if collection is not catalog.everything:  # the home page shows the largest topics too
            yield Route(page, _index_file(page), source=source)
        for extension in FEED_EXTENSIONS:
            path = PATHS.feed(collection, extension)
            yield Route(path, path.lstrip("/"), source=source)
            yield Route(path, path.lstrip("/") + PREVIEW_SUFFIX, BROWSER, source)
    yield Route(PATHS.page(catalog.everything), _index_file(PATHS.page(catalog.everything)))
    for page in PAGES:
        yield Route(page, _index_file(page))
    for path in LISTINGS:
        yield Route(path, path.lstrip("/"))
    for path in STATIC:
        yield Route(path, path.lstrip("/"), source=inputs.SITE)
    for alias, target in FEED_ALIASES.items():
        if "." in alias:  # a file name a static host can serve as it is
            yield Route(target, alias.lstrip("/"), source=f"{ALL}:")


def _index_file(page: str) -> str:
    return f"{page.strip('/')}/index.html".lstrip("/")


def redirects_file() -> bytes:
    """`_redirects` for Netlify and Cloudflare Pages: the feed names other software uses."""
    lines = [f"{alias} {target} 301" for alias, target in FEED_ALIASES.items()]
    return ("\n".join(lines) + "\n").encode("utf-8")


class LinkInside(OSError):
    """A symbolic link where the build would write or remove below OUTDIR: never followed."""


# Folders below OUTDIR are opened one by one relative to their parent, never through a
# symbolic link, so that a link planted inside OUTDIR cannot lead a write or a removal
# elsewhere (even one swapped in while the build runs).
_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _open_folders(outdir: Path, parts: list[str], create: bool) -> list[int]:
    """Descriptors of outdir and of each folder of `parts` below it (made when missing and
    `create`); LinkInside when one is a symbolic link. The caller closes them all."""
    descriptors = [os.open(outdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    try:
        for depth, part in enumerate(parts):
            try:
                descriptors.append(os.open(part, _OPEN_FOLDER, dir_fd=descriptors[-1]))
                continue
            except FileNotFoundError:
                if not create:
                    raise
            except OSError as error:
                if not os.path.islink(os.path.join(outdir, *parts[: depth + 1])):
                    raise
                where = "/".join(parts[: depth + 1])
                raise LinkInside(error.errno, f"{where} is a symbolic link; not followed") from None
            # A build's second process may make the same folder at the same moment.
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=descriptors[-1])
            descriptors.append(os.open(part, _OPEN_FOLDER, dir_fd=descriptors[-1]))
    except BaseException:
        _close(descriptors)
        raise
    return descriptors


def _close(descriptors: list[int]) -> None:
    for descriptor in descriptors:
        os.close(descriptor)


class _Folders:
    """The folders below OUTDIR that one build writes into, each opened once (as
    _open_folders does, through no symbolic link) rather than once for every file: opening
    costs a build more than writing. A folder that becomes a link later is not followed
    either: its descriptor is the folder that was opened."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self._open: dict[str, int] = {}

    def of(self, parts: list[str], create: bool) -> int:
        """The descriptor of the folder outdir/parts (see _open_folders)."""
        key = "/".join(parts)
        found = self._open.get(key)
        if found is None:
            descriptors = _open_folders(self.outdir, parts, create)
            _close(descriptors[:-1])
            found = self._open[key] = descriptors[-1]
        return found

    def close(self) -> None:
        _close(list(self._open.values()))
        self._open.clear()


def _write_atomically(
    outdir: Path, name: str, body: bytes, folders: _Folders | None = None
) -> None:
    """Write outdir/name by a temporary file renamed into place, through no symbolic link
    (one in the file's own place is replaced, not written through)."""
    *parts, leaf = name.split("/")
    if folders is not None:
        _write_in(folders.of(parts, create=True), leaf, body)
        return
    descriptors = _open_folders(outdir, parts, create=True)
    try:
        _write_in(descriptors[-1], leaf, body)
    finally:
        _close(descriptors)


def _write_in(folder: int, leaf: str, body: bytes) -> None:
    temporary = f".tmp-{secrets.token_hex(4)}{leaf}"[:255]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    handle = os.open(temporary, flags, 0o644, dir_fd=folder)
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(body)
            os.fchmod(output.fileno(), 0o644)
        # Readers see the old file or the new one, never half.
        os.replace(temporary, leaf, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        os.unlink(temporary, dir_fd=folder)
        raise


def _read_inside(outdir: Path, name: str, folders: _Folders | None = None) -> bytes:
    """The bytes of the regular file outdir/name, reached through no symbolic link."""
    *parts, leaf = name.split("/")
    if folders is not None:  # the build writes there next if it differs: made if missing
        handle = os.open(leaf, _OPEN_FILE, dir_fd=folders.of(parts, create=True))
    else:
        descriptors = _open_folders(outdir, parts, create=False)
        try:
            handle = os.open(leaf, _OPEN_FILE, dir_fd=descriptors[-1])
        finally:
            _close(descriptors)
    with os.fdopen(handle, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise IsADirectoryError(21, "not a regular file")
        return source.read()


def plain_relative(name: str) -> bool:
    """Whether a manifest entry is a plain relative path (no `..`, `.`, empty part, absolute
    path, backslash, NUL or other control character): the only kind a build deletes."""
    return (
        bool(name)
        and name.isprintable()
        and "\\" not in name
        and ".." not in name
        and not name.startswith("/")
        and all(part not in ("", ".") for part in name.split("/"))
    )


def _read_manifest(outdir: Path) -> set[str]:
    """The files the previous build wrote (see _read_entries)."""
    return set(_read_entries(outdir))


def _read_entries(outdir: Path) -> dict[str, str]:
    """The files the previous build wrote, each with what it was built from (`digest<TAB>
    size`, empty when unknown), leaving out (and logging) any entry that is not a plain
    relative path: a tampered manifest can make a build delete nothing outside."""
    try:
        text = _read_inside(outdir, MANIFEST).decode("utf-8", "replace")
    except FileNotFoundError:
        return {}
    except OSError as error:
        logger.warning("build: %s cannot be read (%s); nothing is removed", MANIFEST, error)
        return {}
    entries: dict[str, str] = {}
    for line in text.split("\n"):
        name, _, built_from = line.partition("\t")
        if not name:
            continue
        if not plain_relative(name) or "\ufffd" in name:
            logger.warning(
                "build: %s: ignoring entry %r, not a plain relative path", MANIFEST, name
            )
            continue
        entries[name] = built_from
    return entries


def _remove(outdir: Path, name: str) -> bool:
    """Delete a file an earlier build wrote, and the folders it leaves empty; False (logged)
    when it lies through a symbolic link or cannot be removed. A link in the file's own place
    is removed itself, never what it leads to."""
    *folders, leaf = name.split("/")
    try:
        descriptors = _open_folders(outdir, folders, create=False)
    except FileNotFoundError:
        return True  # gone already, with its folder
    except LinkInside as error:
        logger.warning("build: not removing %s: %s (it may lead outside %s)", name, error, outdir)
        return False
    except OSError as error:
        logger.warning("build: cannot remove %s: %s", name, error.strerror or error)
        return False
    try:
        if stat.S_ISDIR(os.stat(leaf, dir_fd=descriptors[-1], follow_symlinks=False).st_mode):
            raise IsADirectoryError(21, "is a directory")
        os.unlink(leaf, dir_fd=descriptors[-1])
    except FileNotFoundError:
        pass
    except OSError as error:
        logger.warning("build: cannot remove %s: %s", name, error.strerror or error)
        _close(descriptors)
        return False
    try:
        # Drop folders the build made that are now empty, deepest first.
        for depth in range(len(folders) - 1, -1, -1):
            try:
                os.rmdir(folders[depth], dir_fd=descriptors[depth])
            except OSError:
                break  # not empty
    finally:
        _close(descriptors)
    return True


def _had_articles(outdir: Path, previous: set[str]) -> bool:
    """Whether the previous build in outdir showed any article."""
    feeds = tuple(f".{extension}" for extension in FEED_EXTENSIONS)
    if any(
        name.startswith(("topics/", "providers/")) and name.endswith(feeds) for name in previous
    ):
        return True  # a topic's or provider's feed: it had an article
    if "feed.json" not in previous:
        return False
    try:
        return bool(json.loads(_read_inside(outdir, "feed.json")).get("items"))
    except (OSError, ValueError, AttributeError):
        return False


def unreadable_seeds(seeds_dir: Path) -> str | None:
    """Why a seeds directory cannot be read, or None when it can."""
    try:
        with os.scandir(seeds_dir) as entries:
            next(entries, None)
    except OSError as error:
        return f"seeds directory {seeds_dir} cannot be read: {error.strerror or error}"
    return None


def check_build(app: Flask, outdir: Path, allow_empty: bool = False) -> None:
    """Raise BuildRefused when building would damage the site in outdir."""
    store: CatalogStore = app.extensions["feedserver.store"]
    if os.path.lexists(outdir) and not outdir.is_dir():
        raise BuildRefused(f"{outdir} is not a folder; nothing written")
    if store.degraded_reason:
        raise BuildRefused(
            f"{store.seeds_dir}: {store.degraded_reason}; nothing written to {outdir}"
        )
    if (
        not allow_empty
        and not store.catalog.everything.articles
        and _had_articles(outdir, _read_manifest(outdir))
    ):
        raise BuildRefused(
            f"{store.seeds_dir} has no published article, and the build would remove every "
            f"article of the site in {outdir}; nothing written (--allow-empty to build anyway)"
        )


def _fetch(requests: SelfRequests, route: Route) -> bytes:
    return requests.get(route.path, route.headers)


def _place(folders: _Folders, name: str, body: bytes, size: int | None = None) -> bool:
    """Write body to outdir/name unless it holds those bytes already; True when it did.
    `size`: the file's size as the last build left it, when known; a body of another size
    is written without reading the file."""
    try:
        same = (size is None or size == len(body)) and (
            _read_inside(folders.outdir, name, folders) == body
        )
    except OSError:
        same = False
    if not same:
        _write_atomically(folders.outdir, name, body, folders)
    return same


@dataclass(frozen=True, slots=True)
class _Job:
    """One file to make: how the report names it, its name, its bytes, what it is built from."""

    label: str
    name: str
    make: Callable[[], bytes]
    built_from: str
    source: str
    size: int | None = None  # the file's size as the last build recorded it


def _recorded_size(recorded: str | None) -> int | None:
    size = (recorded or "").partition("\t")[2]
    return int(size) if size.isdigit() else None


# What making one file came to: (name, same bytes as before, size, problem or "").
_Outcome = tuple[str, bool, int, str]


def _make(folders: _Folders, job: _Job) -> _Outcome:
    try:
        body = job.make()
        same = _place(folders, job.name, body, job.size)
    except RouteFailed as failure:
        problem = str(failure)
    except OSError as error:
        problem = f"cannot write {job.name}: {error.strerror or error}"
    except Exception as error:  # one route's failure must not stop the others
        problem = f"failed: {type(error).__name__}: {error}"
    else:
        return (job.name, same, len(body), "")
    logger.error("build: %s: %s", job.label, problem)
    return (job.name, False, 0, f"{job.label}: {problem}")


def _still_built(outdir: Path, name: str, recorded: str | None, built_from: str) -> bool:
    """Whether the file the last build made from these very inputs is still there, a regular
    file of the size it had: then it need not be rendered again."""
    if not recorded:
        return False
    digest, _, size = recorded.partition("\t")
    if digest != built_from:
        return False
    try:
        found = os.lstat(os.path.join(outdir, name))
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and str(found.st_size) == size


# Below this many files to make, a second process costs more than it saves.
PARALLEL_FILES = 200


def build_workers() -> int:
    """How many processes render a build's files: one per core, two at most (the routes of
    a catalog share little beyond it, and the parent's copy of it is shared by fork)."""
    if not hasattr(os, "fork"):
        return 1
    return max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


def _make_all(outdir: Path, jobs: list[_Job], workers: int) -> list[_Outcome]:
    """Make every job's file; with workers > 1, a forked child makes a share of them (the
    routes of a collection kept together, since they render the same entries)."""
    folders = _Folders(outdir)
    try:
        return _make_shared(folders, jobs, workers)
    finally:
        folders.close()


def _make_shared(folders: _Folders, jobs: list[_Job], workers: int) -> list[_Outcome]:
    if workers < 2 or len(jobs) < PARALLEL_FILES:
        return [_make(folders, job) for job in jobs]
    sources = sorted({job.source for job in jobs})
    theirs = set(sources[1::2])
    mine = [job for job in jobs if job.source not in theirs]
    shared = [job for job in jobs if job.source in theirs]
    reader, writer = os.pipe()
    gc.freeze()  # the child's collections then touch none of the catalog: no copied pages
    try:
        child = os.fork()
    except OSError as error:  # no process to be had: this one makes them all
        logger.warning("build: cannot fork a worker (%s); rendering in one process", error)
        gc.unfreeze()
        os.close(reader)
        os.close(writer)
        return [_make(folders, job) for job in jobs]
    if child == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            os.close(reader)
            outcomes = [_make(folders, job) for job in shared]
            with os.fdopen(writer, "wb") as pipe:
                pipe.write(json.dumps(outcomes).encode("utf-8"))
            code = 0
        finally:
            os._exit(code)  # no atexit handlers, no flushing of the parent's buffers
    os.close(writer)
    results = [_make(folders, job) for job in mine]
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(child, 0)
    gc.unfreeze()  # a --watch process's old catalogs must stay collectable
    try:
        theirs_done = [tuple(outcome) for outcome in json.loads(data)] if status == 0 else []
    except ValueError:
        theirs_done = []
    if len(theirs_done) != len(shared):
        logger.error("build: a worker process failed (status %s); its files are reported", status)
        theirs_done = [
            (job.name, False, 0, f"{job.label}: worker process failed") for job in shared
        ]
    return results + [(str(n), bool(same), int(size), str(p)) for n, same, size, p in theirs_done]


def build_site(
    app: Flask, outdir: Path, allow_empty: bool = False, workers: int | None = None
) -> BuildReport:
    """Write every route of the app's current catalog under outdir; see the module's doc.
    A file whose inputs did not change since the last build (by its manifest) is not
    rendered again; the others are rendered by `workers` processes (default build_workers).

    Raises BuildRefused, having changed nothing, when the build would damage the site."""
    check_build(app, outdir, allow_empty)
    # A build makes few cycles but many objects: the collector's passes over the catalog
    # (and the memo) would cost more than they free.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(app, outdir, workers)
    finally:
        if collecting:
            gc.enable()


def _build(app: Flask, outdir: Path, workers: int | None) -> BuildReport:
    store: CatalogStore = app.extensions["feedserver.store"]
    catalog = store.catalog
    previous = _read_entries(outdir)
    requests = SelfRequests(app)
    # Each article's entries and card rendered once, for every feed and page that shows it.
    fragments.install(app).prune(catalog.everything.articles, _feed_urls(requests, catalog))
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BuildRefused(f"{outdir} cannot be made: {error.strerror or error}") from None
    site = inputs.site_digest(app.extensions[SETTINGS_EXTENSION])
    digests = inputs.InputDigests(store, catalog)
    jobs = [
        _Job(
            route.label,
            route.name,
            partial(_fetch, requests, route),
            f"{site}.{digests.of(route.source)}",
            route.source,
            _recorded_size(previous.get(route.name)),
        )
        for route in routes(catalog)
    ]
    jobs.append(_Job(REDIRECTS_FILE, REDIRECTS_FILE, redirects_file, site, inputs.SITE))
    built: dict[str, str] = {}  # name -> what it was built from, for the manifest
    todo = []
    for job in jobs:
        if _still_built(outdir, job.name, previous.get(job.name), job.built_from):
            built[job.name] = previous[job.name]
        else:
            todo.append(job)
    skipped = len(built)
    workers = workers or build_workers()
    _render_entries_ahead(app, requests, catalog, todo, workers)
    written = unchanged = 0
    failed: list[str] = []
    kept: set[str] = set()  # files of failed routes: the last good copy stays
    by_name = {job.name: job for job in todo}
    for name, same, size, problem in _make_all(outdir, todo, workers):
        if problem:
            failed.append(problem)
            if name in previous:
                kept.add(name)
            continue
        built[name] = f"{by_name[name].built_from}\t{size}"
        unchanged += same
        written += not same
    stale = set(previous) - set(built) - kept
    removed = sum(_remove(outdir, name) for name in sorted(stale))
    # Stale entries that could not be removed stay listed, so a later build tries again;
    # they and the files of failed routes are listed without inputs, to be made next time.
    listed = dict.fromkeys(kept | {name for name in stale if (outdir / name).exists()}, "")
    listed.update(built)
    lines = (f"{name}\t{listed[name]}" if listed[name] else name for name in sorted(listed))
    try:
        _write_atomically(outdir, MANIFEST, ("\n".join(lines) + "\n").encode("utf-8"))
    except OSError as error:
        failed.append(f"{MANIFEST}: cannot write: {error.strerror or error}")
        logger.error("build: %s", failed[-1])
    report = BuildReport(len(built), written, unchanged + skipped, removed, tuple(failed), skipped)
    logger.info(
        "build: files=%d written=%d unchanged=%d (not rendered again: %d) removed=%d failed=%d",
        report.files,
        report.written,
        report.unchanged,
        report.skipped,
        report.removed,
        len(report.failed),
    )
    return report


def _feed_urls(requests: SelfRequests, catalog: Catalog) -> set[str]:
    """The URL of every feed of the catalog, as its responses give it."""
    urls = Urls(requests.base_url(requests.app.extensions[SETTINGS_EXTENSION].base_url))
    collections = (catalog.everything, *catalog.topics.values(), *catalog.providers.values())
    return {urls.feed(c, extension) for c in collections for extension in FEED_EXTENSIONS}


def _render_entries_ahead(
    app: Flask, requests: SelfRequests, catalog: Catalog, todo: list[_Job], workers: int
) -> None:
    """The entries of the feeds to render, into the memo before any route (prerender.py)."""
    settings = app.extensions[SETTINGS_EXTENSION]
    collections = []
    for source in sorted({job.source for job in todo}):
        kind, _, key = source.partition(":")
        collection = catalog.collection(kind, key)
        if collection is not None:
            collections.append(collection)
    if not collections:
        return
    urls = Urls(requests.base_url(settings.base_url))
    articles = prerender.shown(collections, settings.feed_limit)
    memo = fragments.install(app)
    prerender.render_ahead(articles, urls, catalog, settings.site_title, memo, workers)


def watch(app: Flask, outdir: Path, interval: float, allow_empty: bool = False) -> None:
    """Rebuild whenever a reload changes the catalog, every interval, until interrupted."""
    store: CatalogStore = app.extensions["feedserver.store"]
    while True:
        time.sleep(interval)
        before = store.catalog
        store.reload()
        if store.catalog is not before:
            try:
                build_site(app, outdir, allow_empty)
            except BuildRefused as refusal:
                logger.error("build refused: %s", refusal)
