"""Measure feedserver at 1,000, 10,000 and 100,000 seed files against the issue's targets.

    python -m benchmarks [--sizes 1000,10000,100000]
                         [--only cold,reload,watch,serve,flat,filtered,memory,startup,
                                 restart,slow,stall,index,shared,export]
                         [--workdir DIR] [--markdown FILE]

For each size it prints one table: figure, measured, floor, ratio, target, MET/MISSED (or
info). Seed trees are generated once into the work folder and kept for later runs. The serving
figure uses wrk when it is installed (apt-get install -y wrk), else a Python load generator
with the same number of connections. See BENCHMARKS.md for what each figure means.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import exporting, fresh, loadgen, report, targets, trees

GROUPS = (
    "cold",
    "reload",
    "watch",
    "serve",
    "flat",
    "filtered",
    "memory",
    "startup",
    "restart",
    "slow",
    "stall",
    "index",
    "shared",
    "export",
)
BASELINE_SIZE = 1000
# The static export's figures are the at 10,000 files; a full run stops there (a
# cold export and Hugo at 100,000 files take minutes each, four times over).
EXPORT_SIZE = 10_000


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be positive whole numbers")
    return sizes


def _groups(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(GROUPS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown figure(s): {', '.join(unknown)}")
    return [group for group in GROUPS if group in chosen]


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=_sizes, default=[1000, 10_000, 100_000])
    parser.add_argument("--only", type=_groups, default=list(GROUPS), metavar="FIGURES")
    parser.add_argument("--workdir", type=Path, default=trees.DEFAULT_WORKDIR)
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="load generator threads")
    parser.add_argument("--rounds", type=int, default=3, help="load runs per server")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--markdown", type=Path, help="also write the run as Markdown here")
    return parser


def _snapshots(state: dict[str, Any]) -> Path:
    """The snapshot folder of the figures that use one."""
    return Path(state["workdir"]) / "snapshots"


def _memory(
    tree: trees.SeedTree, options: targets.Options, state: dict[str, Any]
) -> list[report.Figure]:
    figures = targets.memory(tree, state["idle"], _snapshots(state))
    related = trees.seed_tree(
        state["workdir"], tree.count, state["seed"], related=targets.RELATED_ITEMS
    )
    _progress(f"N={tree.count:,}: memory, related-heavy corpus ({related.total_bytes:,} B)")
    trees.warm(related.root)
    return figures + targets.memory(related, state["idle"], _snapshots(state), "related-heavy")


def _restart(
    tree: trees.SeedTree, options: targets.Options, state: dict[str, Any]
) -> list[report.Figure]:
    figures = targets.restarts(tree, _snapshots(state))
    _progress(f"N={tree.count:,}: four workers starting together, with and without --preload")
    return figures + targets.workers(tree, options, _snapshots(state))


def _export(
    tree: trees.SeedTree, options: targets.Options, state: dict[str, Any]
) -> list[report.Figure]:
    # The corpus of the same size (hundreds of topics and providers), not this tree.
    workdir, seed = Path(state["workdir"]), state["seed"]
    if tree.count > EXPORT_SIZE and state["with_others"]:
        note = f"measured up to {EXPORT_SIZE:,} files in a full run; alone: --only export"
        return [report.Figure("static export", "-", "-", "-", "-", report.INFO, note)]
    figures = exporting.versus_hugo(workdir, tree.count, seed)
    _progress(f"N={tree.count:,}: incremental rebuilds vs a full build")
    return figures + exporting.incremental(workdir, tree.count, seed)


Step = Callable[[trees.SeedTree, targets.Options, dict[str, Any]], list[report.Figure]]
# After the cold load and reloads: each group, what the progress line says, how to measure it.
STEPS: tuple[tuple[str, str, Step], ...] = (
    ("watch", "reloads following inotify", lambda tree, _, __: targets.watched_reload(tree)),
    ("serve", "serving under gunicorn", lambda tree, options, _: targets.serve(tree, options)),
    (
        "flat",
        "feed latency",
        lambda tree, _, state: targets.flat_cost(tree, state["baseline"]),
    ),
    (
        "filtered",
        "filtered feed latency",
        lambda tree, _, state: targets.filtered_cost(tree, state["baseline"]),
    ),
    ("memory", "memory", _memory),
    (
        "startup",
        "start-up with --preload -w 4",
        lambda tree, options, _: targets.start_up(tree, options),
    ),
    ("restart", "restart with unchanged seeds vs cold start", _restart),
    (
        "slow",
        "a probe under slow clients",
        lambda tree, options, _: targets.slow_clients(tree, options),
    ),
    (
        "stall",
        "a cached feed during a 1% reload",
        lambda tree, options, _: targets.reload_stall(tree, options),
    ),
    (
        "index",
        "the search index after a 1% reload vs a whole build",
        lambda tree, _, __: targets.index_follow(tree),
    ),
    (
        "shared",
        "-w 4 memory in all, above one article, before and after a 1% reload",
        lambda tree, options, _: targets.shared_memory(tree, options),
    ),
    ("export", "static export vs Hugo (cold, in turns)", _export),
)


def measure_size(
    tree: trees.SeedTree,
    groups: list[str],
    options: targets.Options,
    state: dict[str, Any],
) -> report.SizeReport:
    """Every chosen figure at one size; `state` holds the 1,000-file tree, the idle RSS, the
    work folder and the generator seed."""
    result = report.SizeReport(tree.count, tree.total_bytes)
    _progress(f"N={tree.count:,}: warming the page cache")
    trees.warm(tree.root)
    if "cold" in groups or "reload" in groups:
        _progress(f"N={tree.count:,}: cold load and reloads")
        result.figures += targets.cold_and_reload(tree, "cold" in groups, "reload" in groups)
    for group, doing, step in STEPS:
        if group in groups:
            _progress(f"N={tree.count:,}: {doing}")
            result.figures += step(tree, options, state)
    return result


def _markdown(
    path: Path,
    command: str,
    started: datetime,
    machine: dict[str, str],
    loads: list[str],
    reports: list[Any],
) -> None:
    took = datetime.now(UTC).replace(microsecond=0) - started
    lines = [
        f"Run started {started:%Y-%m-%d %H:%M} UTC, {took} long: `{command}`",
        "",
        *(f"- {key}: {value}" for key, value in machine.items()),
        f"- load average (1 5 15 min) at start and end: {loads[0]} / {loads[-1]}",
        "",
    ]
    for size_report in reports:
        lines += [report.markdown_table(size_report), ""]
    lines += ["```", report.summary(reports), "```", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print a table per size."""
    args = build_parser().parse_args(argv)
    started = datetime.now(UTC).replace(microsecond=0)
    workdir: Path = args.workdir.resolve()
    machine = report.machine()
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()), flush=True)
    if "serve" in args.only and args.loadgen != "python" and not loadgen.wrk_available():
        if args.loadgen == "wrk":
            print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
            return 2
        print(f"NOTE: {loadgen.WRK_HINT}", flush=True)
    loads = [report.load_average()]
    print(f"load average at start: {loads[0]}", flush=True)
    shutil.rmtree(workdir / "logs", ignore_errors=True)  # keep the logs of this run only
    options = targets.Options(
        logs=workdir / "logs",
        connections=args.connections,
        threads=args.threads,
        seconds=args.seconds,
        rounds=args.rounds,
        loadgen=args.loadgen,
    )
    state: dict[str, Any] = {
        "baseline": None,
        "idle": None,
        "workdir": workdir,
        "seed": args.seed,
        "with_others": len(args.only) > 1,
    }
    if "flat" in args.only or "filtered" in args.only:
        state["baseline"] = trees.seed_tree(workdir, BASELINE_SIZE, args.seed)
    if "memory" in args.only:
        state["idle"] = fresh.run("memory:idle_rss")
    reports = []
    for size in args.sizes:
        tree = trees.seed_tree(workdir, size, args.seed)
        size_report = measure_size(tree, args.only, options, state)
        reports.append(size_report)
        print("\n" + report.text_table(size_report) + "\n", flush=True)
    loads.append(report.load_average())
    print(f"load average at end: {loads[-1]}")
    print(report.summary(reports))
    if args.markdown:
        command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
        _markdown(args.markdown, command.strip(), started, machine, loads, reports)
        print(f"wrote {args.markdown}")
    return 1 if any(f.status == report.MISSED for r in reports for f in r.figures) else 0


if __name__ == "__main__":
    sys.exit(main())
