"""Figures and how they are printed: one row per figure with its floor, ratio and target."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MET = "MET"
MISSED = "MISSED"
INFO = "info"


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, the floor it is held against, and whether it meets its target.

    `status` is MET or MISSED for a figure with a target at this size, and INFO for one that
    only explains the others (or whose target the issue sets at another size only).
    """

    name: str
    measured: str
    floor: str
    ratio: str
    target: str
    status: str
    note: str = ""


@dataclass(slots=True)
class SizeReport:
    """Every figure measured at one number of seed files."""

    size: int
    seed_bytes: int
    figures: list[Figure] = field(default_factory=list)


def judged(ok: bool, applies: bool = True) -> str:
    """MET or MISSED when the target applies at this size, else INFO."""
    if not applies:
        return INFO
    return MET if ok else MISSED


def ratio_at_most(
    name: str, measured: str, floor: str, share: float, target: float, note: str = ""
) -> Figure:
    """A figure met when share, the measured value over its floor, is at most target."""
    return Figure(
        name, measured, floor, ratio(share), f"<= {target:.2f}x", judged(share <= target), note
    )


def seconds(value: float) -> str:
    """A duration, in ms below a second."""
    if value < 1.0:
        return f"{value * 1000:.1f} ms" if value >= 0.001 else f"{value * 1e6:.1f} µs"
    return f"{value:.2f} s"


def megabytes(value: float) -> str:
    """A byte count in MB (10^6 bytes)."""
    return f"{value / 1e6:.1f} MB"


def ratio(value: float) -> str:
    """A ratio with two decimals."""
    return f"{value:.2f}x"


COLUMNS = ("figure", "measured", "floor", "ratio", "target", "status")


def _rows(report: SizeReport) -> list[tuple[str, ...]]:
    return [(f.name, f.measured, f.floor, f.ratio, f.target, f.status) for f in report.figures]


def text_table(report: SizeReport) -> str:
    """The figures of one size as an aligned plain-text table, notes underneath."""
    rows = [COLUMNS, *_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [f"N = {report.size:,} seed files ({megabytes(report.seed_bytes)} on disk)"]
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    notes = [f"  - {f.name}: {f.note}" for f in report.figures if f.note]
    if notes:
        lines += ["notes:", *notes]
    return "\n".join(lines)


def markdown_table(report: SizeReport) -> str:
    """The figures of one size as a Markdown table, notes underneath."""
    lines = [
        f"### N = {report.size:,} seed files ({megabytes(report.seed_bytes)} on disk)",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in _rows(report):
        cells = [cell.replace("|", "\\|") for cell in row]
        cells[-1] = f"**{cells[-1]}**" if cells[-1] == MISSED else cells[-1]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {f.name}: {f.note}" for f in report.figures if f.note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def summary(reports: Sequence[SizeReport]) -> str:
    """One line per missed target, or a line saying every target was met."""
    missed = [
        f"N={report.size:,}: {figure.name} ({figure.measured}, ratio {figure.ratio}, "
        f"target {figure.target})"
        for report in reports
        for figure in report.figures
        if figure.status == MISSED
    ]
    met = sum(1 for r in reports for f in r.figures if f.status == MET)
    if not missed:
        return f"all {met} targets met" if met else "no figure with a target at these sizes"
    return f"{met} targets met, {len(missed)} missed:\n" + "\n".join(f"  {m}" for m in missed)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _wrk_version() -> str:
    path = shutil.which("wrk")
    if path is None:
        return "not installed (Python load generator used)"
    result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    first = (result.stdout or result.stderr).splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, to judge how quiet the machine was."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def code_version() -> str:
    """The commit of the code measured, and whether feedserver/ had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--", "feedserver", "wsgi.py")
    return commit + (" with uncommitted changes in feedserver/" if dirty else "")


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    from importlib.metadata import version

    import yaml

    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory_total(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "packages": (
            f"Flask {version('flask')}, feedgen {version('feedgen')}, "
            f"gunicorn {version('gunicorn')}, PyYAML {yaml.__version__} "
            f"(libyaml {'yes' if hasattr(yaml, 'CSafeLoader') else 'no'})"
        ),
        "load generator": _wrk_version(),
        "code": code_version(),
    }
