"""Shared fixtures: apps over a copy of the bundled seeds, seed-file writers, a real gunicorn.

Every test runs with the FEEDSERVER_* variables cleared and in an empty working directory, so
neither the developer's environment nor the repository's config/feedserver.yaml leaks in.
"""

from __future__ import annotations

import http.client
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient

from benchmarks import servers
from benchmarks.servers import HOST
from benchmarks.servers import GunicornServer as GunicornServer  # the tests import it from here
from feedserver import create_app
from feedserver.config import CONFIG_ENV, ENV_PREFIX
from feedserver.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_SEEDS = ROOT / "seeds"
TEST_BASE_URL = "http://feeds.test"
GUNICORN_START_TIMEOUT = 60.0


def _feedserver_variables() -> set[str]:
    names = {ENV_PREFIX + setting.name.upper() for setting in SETTINGS} | {CONFIG_ENV}
    return names | {name for name in os.environ if name.startswith(ENV_PREFIX)}


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No FEEDSERVER_* variable and no config file of the caller's working directory."""
    for name in _feedserver_variables():
        # setenv first, so that undo also removes a variable the code under test sets.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    # Tests fetch the same feed again and again from one client: only the tests of polite
    # polling turn it on.
    monkeypatch.setenv("FEEDSERVER_POLITE_POLLING", "false")
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def bundled_seeds() -> Path:
    """The repository's own seeds directory: read it, never write to it."""
    return BUNDLED_SEEDS


@pytest.fixture
def seeds_dir(tmp_path: Path) -> Path:
    """A copy of the bundled seeds (mtimes kept) that a test may change."""
    target = tmp_path / "seeds"
    shutil.copytree(BUNDLED_SEEDS, target)
    return target


@pytest.fixture
def tmp_seeds(tmp_path: Path) -> Path:
    """An empty seeds directory for seeds a test writes itself."""
    target = tmp_path / "tmp_seeds"
    target.mkdir()
    return target


def _set_mtime(path: Path, mtime: float | None) -> None:
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture
def write_file(tmp_seeds: Path) -> Callable[..., Path]:
    """Write raw text or bytes as a file under a seeds directory (tmp_seeds by default)."""

    def write(
        name: str,
        content: str | bytes,
        *,
        directory: Path | None = None,
        mtime: float | None = None,
    ) -> Path:
        path = (directory or tmp_seeds) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_bytes(content.encode("utf-8"))
        else:
            path.write_bytes(content)
        _set_mtime(path, mtime)
        return path

    return write


def seed_fields(name: str, omit: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    """A valid, published article's fields, with some replaced or left out."""
    stem = Path(name).stem
    data: dict[str, Any] = {
        "title": f"Test article {stem}",
        "webUrl": f"https://example.com/articles/{stem}",
        "publishedDateTime": "2020-05-01T12:00:00Z",
        "published": True,
        "excerpt": f"The excerpt of {stem}.",
        "provider": {"name": "Example News", "domain": "example.com"},
        "topics": ["Testing"],
    }
    data.update(fields)
    for key in omit:
        data.pop(key, None)
    return data


@pytest.fixture
def write_seed(write_file: Callable[..., Path]) -> Callable[..., Path]:
    """Write a seed file with YAML front matter between `---` lines.

    `write_seed("a.txt", title="T", omit=("excerpt",), directory=..., mtime=...)`: fields
    override those of a valid published article; `omit` leaves fields out.
    """

    def write(
        name: str,
        *,
        omit: tuple[str, ...] = (),
        directory: Path | None = None,
        mtime: float | None = None,
        **fields: Any,
    ) -> Path:
        data = seed_fields(name, omit, **fields)
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        return write_file(name, f"---\n{text}---\nBody text.\n", directory=directory, mtime=mtime)

    return write


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """Build an app over a seeds directory with further settings as keyword arguments."""

    def make(seeds: Path, **settings: Any) -> Flask:
        app = create_app({"seeds_dir": str(seeds), **settings})
        app.config.update(TESTING=True)
        return app

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask], seeds_dir: Path) -> Flask:
    """An app over a copy of the bundled seeds, at http://feeds.test."""
    return make_app(seeds_dir, base_url=TEST_BASE_URL)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of `app`."""
    return app.test_client()


# --- a real gunicorn --------------------------------------------------------------------


def launch_gunicorn(
    seeds: Path,
    log_dir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    workers: int = 2,
) -> GunicornServer:
    """Start `python -m gunicorn -w N -b 127.0.0.1:PORT [args] wsgi:app` in the repository,
    serving `seeds` (FEEDSERVER_SEEDS_DIR) plus any FEEDSERVER_* settings in `env`, and wait
    until it answers. The caller must `stop()` it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    environment["FEEDSERVER_SEEDS_DIR"] = str(seeds)
    environment["FEEDSERVER_POLITE_POLLING"] = "false"
    environment["FEEDSERVER_STATS_DB"] = str(log_dir / "stats.sqlite3")
    environment.update(env or {})
    for attempt in range(3):  # another process may take the free port before gunicorn does
        port = servers.free_port()
        command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"{HOST}:{port}"]
        command += ["--graceful-timeout", "5", *args, "wsgi:app"]
        server = servers.launch(command, port, log_dir / f"gunicorn-{port}.log", environment)
        try:
            # Any status will do: 503 while degraded or stale is an answer all the same.
            server.wait_ready(timeout=GUNICORN_START_TIMEOUT, any_status=True, probe_timeout=2)
            return server
        except servers.ServerExited:
            if "already in use" not in server.output() or attempt == 2:
                output = server.output()
                raise AssertionError(f"gunicorn exited at start; its output:\n{output}") from None
        except TimeoutError:
            server.stop()
            raise AssertionError(
                f"gunicorn did not answer in time; its output:\n{server.output()}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


@pytest.fixture(scope="session")
def gunicorn_launcher() -> Callable[..., GunicornServer]:
    """`launch_gunicorn` for fixtures of a wider scope; they must stop what they start."""
    return launch_gunicorn


@pytest.fixture
def start_gunicorn(tmp_path: Path) -> Iterator[Callable[..., GunicornServer]]:
    """Start gunicorn servers for one test; all are stopped when it ends.

    `start_gunicorn(seeds, "--preload", env={"FEEDSERVER_RELOAD_INTERVAL": "1"}, workers=2)`
    """
    servers: list[GunicornServer] = []

    def start(
        seeds: Path, *args: str, env: Mapping[str, str] | None = None, workers: int = 2
    ) -> GunicornServer:
        server = launch_gunicorn(seeds, tmp_path / "gunicorn", *args, env=env, workers=workers)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def timed_get(
    port: int, path: str, agent: str = "curl/8.5.0", timeout: float = 60
) -> tuple[int, bytes, float]:
    """One GET on a fresh connection to a local server: status, body and seconds taken."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": agent})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, body, time.perf_counter() - started
