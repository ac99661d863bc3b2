"""Profiles behind the figures: where a cold load, a reload, a render or a request spends its
time, where the memory goes, and where a gunicorn worker under load spends its time.

    python -m benchmarks.profile {cold,reload,reload1,render,cached,memory,serve} \\
        [--size 100000] [--workdir DIR] [--top 25] [--pyinstrument [--html FILE]]

By default the work runs under py-spy (sampling, so call-heavy code is not overstated) and the
top functions by own and by inclusive samples are printed, counting only samples taken inside
the profiled work (not the set-up, such as loading the seeds for `render`). `--pyinstrument`
prints pyinstrument's call tree instead. `memory` prints tracemalloc's top allocation sites
still alive after a load, and the gc-tracked objects by type. `serve` samples one gunicorn
worker while the load generator asks for the cached topic feed. Needs pyinstrument and py-spy
in the same environment (pip install pyinstrument py-spy).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import gc
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import flat, loadgen, servers, serving, trees
from .flat import BASE_URL, biggest_topic
from .fresh import REPO_ROOT, clean_environment
from .loading import MAX_FILE_BYTES, SITE_TITLE

TASKS = ("cold", "reload", "reload1", "render", "cached", "memory", "serve")
MARKER = "profiled_section"
_LINE_NUMBER = re.compile(r":\d+\)$")


def profiled_section(work: Callable[[], Any]) -> None:
    """Run the work; py-spy samples are counted only when this frame is on the stack."""
    started = time.perf_counter()
    work()
    print(f"profiled work took {time.perf_counter() - started:.3f} s", file=sys.stderr)


def _py_spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def summarize_py_spy(raw: Path, top: int, marker: str | None = None) -> str:
    """Top functions by own and inclusive samples from py-spy's raw (collapsed) output."""
    own: collections.Counter[str] = collections.Counter()
    own_lines: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        lines = stack.split(";")
        if marker is not None:
            names = [frame.split(" (")[0] for frame in lines]
            if marker not in names:
                continue
            lines = lines[names.index(marker) + 1 :] or lines[-1:]
        frames = [_LINE_NUMBER.sub(")", frame) for frame in lines]
        count = int(count_text)
        samples += count
        own[frames[-1]] += count
        own_lines[lines[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not samples:
        return "no samples"
    report = [f"{samples} samples; top functions by own samples:"]
    report += [f"  {n / samples:6.1%}  {frame}" for frame, n in own.most_common(top)]
    report += ["top functions by inclusive samples:"]
    report += [f"  {n / samples:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    report += ["top lines by own samples:"]
    report += [f"  {n / samples:6.1%}  {frame}" for frame, n in own_lines.most_common(top)]
    return "\n".join(report)


def _pyinstrument(work: Callable[[], Any], html: Path | None) -> None:
    from pyinstrument import Profiler

    profiler = Profiler()
    profiler.start()
    profiled_section(work)
    profiler.stop()
    print(profiler.output_text(processor_options={"filter_threshold": 0.02}))
    if html is not None:
        profiler.write_html(html)
        print(f"wrote {html}")


def _store(tree: trees.SeedTree) -> Any:
    from feedserver.store import CatalogStore

    return CatalogStore(tree.root, MAX_FILE_BYTES, SITE_TITLE)


def _app(tree: trees.SeedTree) -> Any:
    from feedserver import create_app

    # Profiles ask the same feed again and again: no 429 for polling too often.
    return create_app({"seeds_dir": str(tree.root), "base_url": BASE_URL, "polite_polling": False})


def prepare(task: str, tree: trees.SeedTree) -> tuple[Callable[[], Any], Callable[[], None]]:
    """The work to profile for a task, and what to do after it (put edited files back)."""
    if task in ("cold", "reload", "reload1"):
        store = _store(tree)
        if task == "cold":
            return store.reload, lambda: None
        store.reload()
        if task == "reload":
            return store.reload, lambda: None
        changed = trees.sample_paths(tree.root, tree.seed, 0.01)
        restore = contextlib.ExitStack()
        restore.enter_context(trees.editing(tree, changed))
        trees.rewrite_titles(tree.root, changed, "Profiled:")
        return store.reload, restore.close
    app = _app(tree)
    gc.freeze()  # as a serving process does once loaded (gunicorn_hooks.serving_app)
    store = app.extensions["feedserver.store"]
    template = flat.environ_for(f"/topics/{flat.biggest_topic(app)}.rss")
    flat.call(app, template)

    def renders() -> None:
        for _ in range(200):
            store.catalog = copy.copy(store.catalog)  # a new catalog: the cache starts empty
            flat.call(app, template)

    def cached() -> None:
        for _ in range(100_000):
            flat.call(app, template)

    return (renders if task == "render" else cached), lambda: None


def run_task(task: str, tree: trees.SeedTree, html: Path | None, pyinstrument: bool) -> None:
    """Set the task up, then run its work (under pyinstrument if asked), then clean up."""
    work, done = prepare(task, tree)
    try:
        if pyinstrument:
            _pyinstrument(work, html)
        else:
            profiled_section(work)
    finally:
        done()


def under_py_spy(args: argparse.Namespace) -> None:
    """Re-run this command as the child of `py-spy record` and summarize the samples."""
    raw = Path(tempfile.mkdtemp(prefix="feedserver-profile-")) / "py-spy.txt"
    command = [sys.executable, "-m", "benchmarks.profile", args.task, "--size", str(args.size)]
    command += ["--seed", str(args.seed), "--workdir", str(args.workdir), "--no-profiler"]
    subprocess.run(
        [_py_spy(), "record", "-r", "250", "-f", "raw", "-o", str(raw), "--", *command],
        cwd=REPO_ROOT,
        env=clean_environment(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(summarize_py_spy(raw, args.top, MARKER))


def profile_memory(tree: trees.SeedTree, top: int) -> None:
    """What a loaded app keeps: tracemalloc's top allocation sites still alive after load."""
    tracemalloc.start(8)
    # Not frozen as a serving process's app is: gc.get_objects() leaves frozen objects out,
    # and this counts what the loaded app keeps.
    app = _app(tree)
    app.test_client().get(f"/topics/{biggest_topic(app)}.rss")
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    print(f"traced memory alive: {total / 1e6:.1f} MB ({tree.total_bytes / 1e6:.1f} MB of seeds)")
    print("\nby file:")
    for stat in snapshot.statistics("filename")[:top]:
        print(f"  {stat.size / 1e6:8.1f} MB {stat.count:>10,} blocks  {stat.traceback[0]}")
    print("\nby line:")
    for stat in snapshot.statistics("lineno")[:top]:
        print(f"  {stat.size / 1e6:8.1f} MB {stat.count:>10,} blocks  {stat.traceback[0]}")
    kinds: collections.Counter[str] = collections.Counter()
    sizes: collections.Counter[str] = collections.Counter()
    for item in gc.get_objects():
        kinds[type(item).__name__] += 1
        sizes[type(item).__name__] += sys.getsizeof(item)
    print("\ngc-tracked objects by type (shallow sizes):")
    for name, size in sizes.most_common(top):
        print(f"  {size / 1e6:8.1f} MB {kinds[name]:>10,}  {name}")


def profile_serving(tree: trees.SeedTree, top: int, seconds: float) -> None:
    """py-spy samples of one gunicorn worker while the load generator asks for a cached feed."""
    logs = Path(tempfile.mkdtemp(prefix="feedserver-profile-"))
    server = servers.start(
        "wsgi:app",
        logs,
        "--workers",
        "1",
        "--preload",
        env={
            "FEEDSERVER_SEEDS_DIR": str(tree.root),
            "FEEDSERVER_BASE_URL": BASE_URL,
            "FEEDSERVER_RELOAD_INTERVAL": "3600",
        },
    )
    raw = logs / "py-spy.txt"
    try:
        server.wait_ready()
        path = serving._biggest_topic_path(server.port)
        url = f"http://{servers.HOST}:{server.port}{path}"
        loadgen.run(url, 8, 1, 1)
        worker = min(server.wait_workers(1))
        command = [_py_spy(), "record", "-p", str(worker), "-d", str(round(seconds))]
        spy = subprocess.Popen(
            [*command, "-r", "250", "-f", "raw", "-o", str(raw), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        load = loadgen.run(url, 8, 1, seconds)
        spy.wait()
    finally:
        server.stop()
    print(f"{load.requests_per_second:,.0f} req/s ({load.tool}) from one worker on {path}")
    print(summarize_py_spy(raw, top))


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=trees.DEFAULT_WORKDIR)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=5.0, help="serve: sampling time")
    parser.add_argument("--pyinstrument", action="store_true", help="call tree, pyinstrument")
    parser.add_argument("--html", type=Path, help="with --pyinstrument: write its HTML report")
    parser.add_argument("--no-profiler", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    tree = trees.seed_tree(args.workdir, args.size, args.seed)
    trees.warm(tree.root)
    if args.task == "memory":
        profile_memory(tree, args.top)
    elif args.task == "serve":
        profile_serving(tree, args.top, args.seconds)
    elif args.pyinstrument or args.no_profiler:
        run_task(args.task, tree, args.html, args.pyinstrument)
    else:
        under_py_spy(args)


if __name__ == "__main__":
    main()
