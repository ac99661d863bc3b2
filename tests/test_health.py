"""/healthz: 200 when ok, 503 when degraded or stale; counts for everyone, file names and
reasons for trusted addresses only; problems summarised once per catalog and capped."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apscheduler.schedulers.base
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from flask.testing import FlaskClient

from feedserver import create_app
from feedserver.health import MAX_LISTED, ProblemSummaries, health
from feedserver.networks import peer_in
from feedserver.scheduler import ClockSteps, follow_clock_steps
from feedserver.store import CatalogStore

from .conftest import TEST_BASE_URL

UNTRUSTED = "203.0.113.9"
BROKEN = "---\ntitle: [unclosed\n---\n"


def get(client: FlaskClient, remote_addr: str = "127.0.0.1", **headers: str) -> Any:
    return client.get("/healthz", headers=headers, environ_base={"REMOTE_ADDR": remote_addr})


def write_broken(directory: Path, count: int) -> None:
    for n in range(count):
        (directory / f"broken-{n:04d}.txt").write_text(BROKEN, encoding="utf-8")


@pytest.fixture
def background_app(seeds_dir: Path) -> Iterator[Callable[[int], Flask]]:
    """Make an app that reloads in the background every N seconds, as under gunicorn; its
    scheduler is stopped when the test ends."""
    apps: list[Flask] = []

    def make(interval: int) -> Flask:
        settings = {"seeds_dir": str(seeds_dir), "reload_interval": interval}
        apps.append(create_app(settings, reload_in_background=True))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["feedserver.scheduler"].stop()


def wait_for(check: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    """Wait, with a generous deadline, until check() holds."""
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"not {what} within {deadline} s")
        time.sleep(0.1)


def test_ok_is_200_and_never_stored(client: FlaskClient) -> None:
    response = get(client)
    assert response.status_code == 200
    data = response.get_json()
    assert data["status"] == "ok"
    assert (data["articles"], data["topics"], data["providers"]) == (2, 2, 2)
    assert data["problems"] == {
        "total": 0,
        "files_with_errors": 0,
        "warnings": 0,
        "withheld": 0,
        "stale": 0,
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_untrusted_addresses_see_counts_but_no_names_or_reasons(
    make_app: Callable[..., Flask], seeds_dir: Path, write_file: Callable[..., Path]
) -> None:
    write_file("secret-draft.txt", BROKEN, directory=seeds_dir)
    client = make_app(seeds_dir, base_url=TEST_BASE_URL).test_client()
    public = get(client, UNTRUSTED)
    assert public.status_code == 200
    data = public.get_json()
    assert data["problems"]["files_with_errors"] == 1
    assert set(data) - {"stats"} == {
        "status",
        "articles",
        "topics",
        "providers",
        "last_reload",
        "problems",
    }
    assert "secret-draft" not in public.get_data(as_text=True)
    # X-Forwarded-For is not believed: the peer is REMOTE_ADDR as the server gives it.
    spoofed = get(client, UNTRUSTED, **{"X-Forwarded-For": "127.0.0.1"})
    assert "secret-draft" not in spoofed.get_data(as_text=True)
    trusted = get(client).get_json()
    assert [e["file"] for e in trusted["errors"]] == ["secret-draft.txt"]
    assert trusted["reload"]["failed"] == 1


def test_health_details_from_names_the_trusted_networks(
    make_app: Callable[..., Flask], seeds_dir: Path, write_file: Callable[..., Path]
) -> None:
    write_file("bad.txt", BROKEN, directory=seeds_dir)
    app = make_app(seeds_dir, health_details_from="10.0.0.0/8, 2001:db8::/32")
    client = app.test_client()
    assert "errors" in get(client, "10.1.2.3").get_json()
    assert "errors" in get(client, "2001:db8::7").get_json()
    assert "errors" not in get(client, "127.0.0.1").get_json()  # loopback no longer listed
    nobody = make_app(seeds_dir, health_details_from=[]).test_client()
    assert "errors" not in get(nobody).get_json()


def test_peer_in() -> None:
    from ipaddress import ip_network

    loopback = (ip_network("127.0.0.0/8"), ip_network("::1"))
    assert peer_in("127.0.0.1", loopback) and peer_in("::1", loopback)
    assert peer_in("::ffff:127.0.0.1", loopback)  # IPv4 on a dual-stack socket
    for peer in (UNTRUSTED, "", None, "unix:/run/feeds.sock", "127.0.0.1, 10.0.0.1"):
        assert not peer_in(peer, loopback)


def test_degraded_is_503_with_its_reason_and_recovers(app: Flask, seeds_dir: Path) -> None:
    client = app.test_client()
    ok = get(client)
    moved = seeds_dir.with_name("moved")
    seeds_dir.rename(moved)
    app.extensions["feedserver.store"].reload()
    degraded = get(client, **{"If-None-Match": ok.headers["ETag"]})  # no 304 hides it
    assert degraded.status_code == 503
    assert degraded.headers["Cache-Control"] == "no-store"
    data = degraded.get_json()
    assert data["status"] == "degraded"
    assert "cannot be read" in data["reason"]
    assert data["articles"] == 2  # still serving the last catalog
    assert "reason" not in get(client, UNTRUSTED).get_json()
    assert get(client, UNTRUSTED).status_code == 503
    moved.rename(seeds_dir)
    app.extensions["feedserver.store"].reload()
    assert get(client).status_code == 200


def test_stale_when_no_reload_completed_for_three_intervals(
    background_app: Callable[[int], Flask],
) -> None:
    app = background_app(60)  # no reload of its own runs during the test
    client = app.test_client()
    store: CatalogStore = app.extensions["feedserver.store"]
    assert get(client).status_code == 200
    report, completed = store.last_report, store.last_completed
    assert report is not None and completed is not None
    allowed = 3 * 60 + report.duration_seconds
    store.monotonic = lambda: completed + allowed - 1  # still ok
    assert get(client).status_code == 200
    store.monotonic = lambda: completed + allowed + 2
    response = get(client)
    assert response.status_code == 503
    data = response.get_json()
    assert data["status"] == "stale"
    assert "no reload has completed for" in data["reason"]
    assert get(client, UNTRUSTED).get_json()["status"] == "stale"


def test_stale_when_the_reload_thread_hangs(
    background_app: Callable[[int], Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real scheduler thread stuck inside a reload (as on a FIFO): stale, then ok."""
    app = background_app(1)
    client = app.test_client()
    store: CatalogStore = app.extensions["feedserver.store"]
    release = threading.Event()
    reload_for_real = store._reload

    def hanging_reload(started: datetime, clock_start: float) -> Any:
        release.wait(120)
        return reload_for_real(started, clock_start)

    monkeypatch.setattr(store, "_reload", hanging_reload)
    get(client)  # the first request starts this process's reload job
    wait_for(lambda: get(client).get_json()["status"] == "stale", "stale")
    assert get(client).status_code == 503
    release.set()
    wait_for(lambda: get(client).status_code == 200, "ok again")


class Clocks:
    """A wall clock and a monotonic clock that tests move by hand; the wall clock may be
    stepped either way, as NTP or an operator does."""

    def __init__(self) -> None:
        self.wall_offset = timedelta(0)
        self.elapsed = 0.0
        self._origin = time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC) + self.wall_offset

    def monotonic(self) -> float:
        return self._origin + self.elapsed


def clocked_store(seeds: Path, clocks: Clocks) -> CatalogStore:
    store = CatalogStore(seeds, 1 << 20, "Test", clock=clocks.wall, monotonic=clocks.monotonic)
    store.reload()
    return store


def status(store: CatalogStore, interval: int = 60) -> tuple[str, dict[str, Any]]:
    _, data = health(store, ProblemSummaries(), reload_interval=interval, trusted=True)
    return data["status"], data


def test_a_wall_clock_stepped_back_does_not_hide_that_reloads_stopped(seeds_dir: Path) -> None:
    """The last reload ran while the clock was an hour ahead; the clock goes back and no
    reload runs: stale after three intervals of real (monotonic) time, though by the wall
    clock that reload is still an hour in the future."""
    clocks = Clocks()
    clocks.wall_offset = timedelta(hours=1)
    store = clocked_store(seeds_dir, clocks)
    clocks.wall_offset = timedelta(0)
    clocks.elapsed = 3 * 60 - 1
    assert status(store)[0] == "ok"
    clocks.elapsed = 3 * 60 + 5
    state, data = status(store)
    assert state == "stale"
    assert "no reload has completed for 18" in data["reason"]
    # Shown as the wall time it ran at; only the staleness goes by the monotonic clock.
    assert data["last_reload"] > datetime.now(UTC).isoformat()


def test_a_wall_clock_stepped_ahead_does_not_make_a_fresh_reload_stale(seeds_dir: Path) -> None:
    clocks = Clocks()
    store = clocked_store(seeds_dir, clocks)
    clocks.wall_offset = timedelta(days=1)
    clocks.elapsed = 10
    assert status(store)[0] == "ok"


def test_a_running_reload_is_stale_only_once_it_has_run_too_long(seeds_dir: Path) -> None:
    """A reload that started within the window is not overdue (the one before it may be
    old); one hung for longer than the window is."""
    clocks = Clocks()
    store = clocked_store(seeds_dir, clocks)
    clocks.elapsed = 10 * 60  # nothing reloaded for ten minutes
    assert status(store)[0] == "stale"
    release, entered = threading.Event(), threading.Event()
    reload_for_real = store._reload

    def hanging_reload(started: datetime, clock_start: float) -> Any:
        entered.set()
        release.wait(60)
        return reload_for_real(started, clock_start)

    store._reload = hanging_reload  # type: ignore[method-assign]
    thread = threading.Thread(target=store.reload)
    thread.start()
    try:
        assert entered.wait(30)
        clocks.elapsed += 3 * 60 - 1  # running, and started within the window
        assert status(store)[0] == "ok"
        clocks.elapsed += 10
        state, data = status(store)
        assert state == "stale"
        assert "a reload has been running for 18" in data["reason"]
    finally:
        release.set()
        thread.join()
    assert status(store)[0] == "ok"


def count_reloads(store: CatalogStore) -> Callable[[], int]:
    """How many reloads the store has completed since this was called."""
    done: list[object] = []
    store.after_reload.append(lambda _store, report: done.append(report))
    return lambda: len(done)


@pytest.mark.parametrize("step_hours", [-1, 1])
def test_a_stepped_wall_clock_moves_each_next_run_by_the_step(step_hours: int) -> None:
    """APScheduler keeps next runs as wall-clock times: stepped back an hour, the next reload
    would be an hour away. The scheduler moves it by the step, keeping its monotonic pace."""
    wall, monotonic = [1_000_000.0], [50.0]
    steps = ClockSteps(lambda: wall[0], lambda: monotonic[0])
    library = BackgroundScheduler(daemon=True)
    library.start(paused=True)
    try:
        job = library.add_job(lambda: None, "interval", seconds=60, id="reload-seeds")
        due = job.next_run_time
        wall[0] += 0.5  # time passing, and a scheduler a little late: no step
        monotonic[0] += 0.4
        follow_clock_steps(library, steps)
        assert library.get_job("reload-seeds").next_run_time == due
        wall[0] += step_hours * 3600
        follow_clock_steps(library, steps)
        moved = library.get_job("reload-seeds").next_run_time
        assert abs((moved - due) - timedelta(hours=step_hours, seconds=0.1)) < timedelta(seconds=1)
        follow_clock_steps(library, steps)  # a step is followed once
        assert library.get_job("reload-seeds").next_run_time == moved
    finally:
        library.shutdown(wait=False)


def test_a_process_clock_an_hour_ahead_for_a_moment_does_not_stop_reloads(
    background_app: Callable[[int], Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack of issue 19 with real time passing: every wall-clock reading of the process
    (the store's, APScheduler's and the scheduler's check for steps) an hour ahead for a
    moment, then back. Reloads go on at their interval, and a takedown made afterwards is
    served (APScheduler alone would wait an hour)."""
    clocks = Clocks()

    class SteppedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + clocks.wall_offset

    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", SteppedDatetime)
    app = background_app(1)
    store: CatalogStore = app.extensions["feedserver.store"]
    store.clock = clocks.wall
    scheduler = app.extensions["feedserver.scheduler"]
    scheduler.wall = lambda: time.time() + clocks.wall_offset.total_seconds()
    reloads = count_reloads(store)
    client = app.test_client()
    get(client)  # starts the loop
    clocks.wall_offset = timedelta(hours=1)
    wait_for(lambda: reloads() >= 1, "a reload while the clock is ahead")
    time.sleep(1.5)
    clocks.wall_offset = timedelta(0)
    after_the_step = reloads()
    seed = next(
        p for p in sorted(store.seeds_dir.rglob("*.txt")) if "published: true" in p.read_text()
    )
    seed.write_text(seed.read_text("utf-8").replace("published: true", "published: false"))
    wait_for(lambda: reloads() >= after_the_step + 2, "reloads after the clock went back", 10)
    data = get(client).get_json()
    assert data["status"] == "ok"
    assert data["articles"] == 1  # the takedown is served
    last = datetime.fromisoformat(data["last_reload"].replace("Z", "+00:00"))
    assert abs(last - datetime.now(UTC)) < timedelta(minutes=1)


def test_without_background_reloads_nothing_is_overdue(app: Flask) -> None:
    """`feedserver build` and the tests load once; an old catalog is not a stale server."""
    store: CatalogStore = app.extensions["feedserver.store"]
    later = store.clock() + timedelta(days=1)
    store.clock = lambda: later
    assert get(app.test_client()).status_code == 200


def test_details_are_capped_and_built_once_per_catalog(
    make_app: Callable[..., Flask], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("good.txt")
    write_broken(tmp_seeds, MAX_LISTED + 150)
    app = make_app(tmp_seeds)
    client = app.test_client()
    summaries: ProblemSummaries = app.extensions["feedserver.health"]
    store: CatalogStore = app.extensions["feedserver.store"]
    bodies = [get(client).get_data() for _ in range(5)]
    data = json.loads(bodies[0])
    assert len(data["errors"]) == MAX_LISTED
    assert [e["file"] for e in data["errors"]] == [f"broken-{n:04d}.txt" for n in range(MAX_LISTED)]
    assert data["problems"]["total"] == data["problems"]["files_with_errors"] == MAX_LISTED + 150
    assert summaries.builds == 1  # five requests, one summary
    assert summaries.of(store.catalog) is summaries.of(store.catalog)
    # Untrusted answers are counts only, whatever the number of problems.
    assert len(get(client, UNTRUSTED).get_data()) < 400
    # A new catalog gets a new summary, once.
    write_seed("another.txt")
    store.reload()
    for _ in range(3):
        get(client)
    assert summaries.builds == 2
    assert get(client).get_json()["problems"]["total"] == MAX_LISTED + 150


def test_concurrent_checks_after_a_reload_build_one_summary(
    make_app: Callable[..., Flask], tmp_seeds: Path
) -> None:
    write_broken(tmp_seeds, 300)
    app = make_app(tmp_seeds)
    summaries: ProblemSummaries = app.extensions["feedserver.health"]
    statuses: list[int] = []

    def check() -> None:
        client = app.test_client()
        statuses.extend(get(client).status_code for _ in range(5))

    threads = [threading.Thread(target=check) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 30
    assert summaries.builds == 1


# --- the stats database, as it is at start -------------------------------------------------


@pytest.mark.parametrize("kind", ["its folder is a file", "it is no database"])
def test_a_stats_database_that_cannot_be_used_at_start_is_failing_at_once(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path, kind: str
) -> None:
    """Reported from the first request, not only after a first failed write; a write with
    nothing to write does not make it ok; it is ok once the database can be used again."""
    blocker = tmp_path / "blocker"
    if kind == "its folder is a file":
        blocker.write_text("x")
        path = blocker / "stats.sqlite3"
    else:
        blocker.write_bytes(b"not SQLite at all " * 100)
        path = blocker
    app = make_app(seeds_dir, stats_db=str(path))
    client = app.test_client()
    assert get(client).get_json()["stats"] == "failing"
    recorder = app.extensions["feedserver.polls"]
    recorder.flush()  # /healthz polls are not counted: nothing to write
    assert get(client).get_json()["stats"] == "failing"
    assert client.get("/feed.rss").status_code == 200  # serving goes on
    blocker.unlink()
    recorder.flush()
    assert get(client).get_json()["stats"] == "ok"


def test_a_usable_stats_database_is_ok_at_start(
    make_app: Callable[..., Flask], seeds_dir: Path, tmp_path: Path
) -> None:
    app = make_app(seeds_dir, stats_db=str(tmp_path / "stats.sqlite3"))
    assert get(app.test_client()).get_json()["stats"] == "ok"
