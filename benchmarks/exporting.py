"""The static export against Hugo, and incremental rebuilds against a full build.

The corpus is the issue's: N articles of the seeds' shape with hundreds of topics and
providers (8 topics and 3 providers per 100 articles: 800 and 300 at 10,000) and related
coverage. Hugo gets the same articles as content files (title, date, `draft` for the
unpublished, `tags` = topics, a `providers` taxonomy, `summary` = excerpt) and a minimal
theme: a list and a single template, and Hugo's own RSS per term. Every run is a fresh,
cold process (no snapshot of parsed seeds, an empty output folder, Hugo with an empty cache
folder), the two sides taking turns; wall and CPU time (user + system, the forked workers
included) are taken by wait4.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import fresh, generate, trees
from .report import INFO, Figure, ratio, ratio_at_most, seconds

HUGO_TARGET = 1.0
NO_CHANGE_TARGET = 0.02
CHANGED_TARGET = 0.15
CHANGED_FRACTION = 0.01
BASE_URL = "https://feeds.example.com"
TURNS = 2

HUGO_CONFIG = f"""baseURL = "{BASE_URL}/"
title = "Benchmark"
disableKinds = ["sitemap", "robotsTXT", "404"]
[taxonomies]
  tag = "tags"
  provider = "providers"
[outputs]
  home = ["HTML", "RSS"]
  section = ["HTML", "RSS"]
  taxonomy = ["HTML"]
  term = ["HTML", "RSS"]
[services.rss]
  limit = 50
"""
HUGO_LIST = """<!DOCTYPE html>
<html><head><title>{{ .Title }}</title></head><body>
<h1>{{ .Title }}</h1>
{{ range first 20 .Pages }}<article><h2><a href="{{ .Permalink }}">{{ .Title }}</a></h2>
<p>{{ .Date.Format "2 January 2006" }}</p><p>{{ .Summary }}</p></article>
{{ end }}</body></html>
"""
HUGO_SINGLE = """<!DOCTYPE html>
<html><head><title>{{ .Title }}</title></head><body>
<h1>{{ .Title }}</h1><p>{{ .Date.Format "2 January 2006" }}</p>
<ul>{{ range .Params.tags }}<li>{{ . }}</li>{{ end }}</ul>
{{ .Content }}</body></html>
"""


def corpus(workdir: Path, count: int, seed: int) -> Path:
    """The issue's corpus of count articles, generated once into the work folder."""
    root = workdir / f"export-seeds-{count}-seed{seed}"
    done = root.with_suffix(".json")
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        generate.generate(
            root, count, seed, topics=max(10, count * 8 // 100), providers=max(5, count * 3 // 100)
        )
        done.write_text(json.dumps({"count": count, "seed": seed}), encoding="utf-8")
    return root


def hugo_site(seeds: Path, site: Path) -> int:
    """Write the same articles as a Hugo site; how many content files."""
    from feedserver.store import CatalogStore

    store = CatalogStore(seeds, 1_000_000, "Benchmark")
    store.reload()
    shutil.rmtree(site, ignore_errors=True)
    content = site / "content" / "articles"
    content.mkdir(parents=True)
    (site / "hugo.toml").write_text(HUGO_CONFIG, encoding="utf-8")
    layouts = site / "layouts" / "_default"
    layouts.mkdir(parents=True)
    (layouts / "list.html").write_text(HUGO_LIST, encoding="utf-8")
    (layouts / "single.html").write_text(HUGO_SINGLE, encoding="utf-8")
    articles = store.articles_read()
    for number, article in enumerate(articles):
        front = {
            "title": article.title,
            "date": article.published_at.isoformat(),
            "draft": not article.published,
            "tags": [topic.name for topic in article.topics],
            "providers": [article.provider.name] if article.provider else [],
            "summary": article.excerpt,
        }
        lines = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in front.items()]
        body = article.body_html or article.excerpt
        text = "---\n" + "\n".join(lines) + "\n---\n" + body + "\n"
        (content / f"article-{number:06d}.md").write_text(text, encoding="utf-8")
    return len(articles)


def _timed(command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run a command to its end: wall seconds, and its CPU seconds and its children's."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=fresh.REPO_ROOT
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = errors.decode("utf-8", "replace")[-2000:]
        raise fresh.ChildFailed(f"{command[:3]} exited with {process.returncode}:\n{tail}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "user": usage.ru_utime}


def _files(root: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(root))


def feedserver_build(seeds: Path, out: Path, cache: Path) -> dict[str, float]:
    """`feedserver build` in a fresh process; the snapshot of parsed seeds kept in cache."""
    command = [sys.executable, "-m", "feedserver", "build", str(out), "--seeds", str(seeds)]
    env = fresh.clean_environment(FEEDSERVER_CACHE_DIR=str(cache))
    return _timed([*command, "--base-url", BASE_URL], env)


def hugo_build(site: Path, out: Path, cache: Path) -> dict[str, float]:
    """Hugo, cold: an empty output folder and cache folder."""
    command = ["hugo", "--quiet", "--source", str(site), "--destination", str(out)]
    return _timed([*command, "--cacheDir", str(cache)])


def _cold(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def _line(name: str, run: dict[str, float]) -> str:
    return f"{name} {seconds(run['wall'])} wall, {seconds(run['cpu'])} CPU"


def versus_hugo(workdir: Path, count: int, seed: int) -> list[Figure]:
    """A full export against Hugo on the same articles, cold, in turns; best of each."""
    seeds = corpus(workdir, count, seed)
    scratch = workdir / "export-runs"
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    hugo = shutil.which("hugo")
    if hugo is not None:
        hugo_site(seeds, scratch / "hugo-site")
    for _ in range(TURNS):
        if hugo is not None:
            theirs.append(
                hugo_build(
                    scratch / "hugo-site", _cold(scratch / "hugo-out"), _cold(scratch / "hc")
                )
            )
        ours.append(feedserver_build(seeds, _cold(scratch / "out"), _cold(scratch / "cache")))
    best = {clock: min(run[clock] for run in ours) for clock in ("wall", "cpu", "user")}
    files = _files(scratch / "out")
    if hugo is None:
        return [
            Figure(
                "export vs Hugo",
                seconds(best["wall"]),
                "-",
                "-",
                f"<= {HUGO_TARGET:.2f}x",
                INFO,
                f"skipped: hugo is not installed (apt-get install -y hugo); {files:,} files, "
                f"{seconds(best['cpu'])} CPU",
            )
        ]
    floor = {clock: min(run[clock] for run in theirs) for clock in ("wall", "cpu", "user")}
    return [
        ratio_at_most(
            "export vs Hugo, full build",
            seconds(best["wall"]),
            f"{seconds(floor['wall'])} Hugo",
            best["wall"] / floor["wall"],
            HUGO_TARGET,
            f"feedserver {files:,} files, Hugo {_files(scratch / 'hugo-out'):,}; CPU "
            f"{seconds(best['cpu'])} vs {seconds(floor['cpu'])} (ratio "
            f"{ratio(best['cpu'] / floor['cpu'])}; user {seconds(best['user'])} vs "
            f"{seconds(floor['user'])}); best of {TURNS} cold runs each, in turns",
        )
    ]


def incremental(workdir: Path, count: int, seed: int) -> list[Figure]:
    """Rebuilds against a full build: as --watch makes them (in the process that built, after
    a reload), and as a fresh `feedserver build` command (loading through its snapshot)."""
    seeds = corpus(workdir, count, seed)
    scratch = workdir / "export-runs"
    changed = trees.sample_paths(seeds, seed, CHANGED_FRACTION)
    originals = {path: (seeds / path).read_bytes() for path in changed}
    try:
        watch = fresh.run(
            "exporting:rebuilds_in_process",
            seeds=str(seeds),
            out=str(_cold(scratch / "watch-out")),
            changed=changed,
        )
        for path, data in originals.items():
            (seeds / path).write_bytes(data)
        out, cache = _cold(scratch / "cmd-out"), _cold(scratch / "cmd-cache")
        full = feedserver_build(seeds, out, cache)
        same = feedserver_build(seeds, out, cache)
        trees.rewrite_titles(seeds, changed, "Edited")
        edited = feedserver_build(seeds, out, cache)
    finally:
        for path, data in originals.items():
            (seeds / path).write_bytes(data)
    figures = []
    for name, runs, target in (
        ("rebuild in --watch, no change", (watch["full"], watch["same"]), NO_CHANGE_TARGET),
        (
            f"rebuild in --watch, {CHANGED_FRACTION:.0%} changed",
            (watch["full"], watch["edited"]),
            CHANGED_TARGET,
        ),
        ("`build` again, no change", (full, same), NO_CHANGE_TARGET),
        (f"`build` again, {CHANGED_FRACTION:.0%} changed", (full, edited), CHANGED_TARGET),
    ):
        floor, measured = runs
        figures.append(
            ratio_at_most(
                name,
                seconds(measured["wall"]),
                _line("full", floor),
                measured["wall"] / floor["wall"],
                target,
                f"CPU {seconds(measured['cpu'])}, ratio {ratio(measured['cpu'] / floor['cpu'])}"
                + (f"; {len(changed)} files edited" if "changed" in name else ""),
            )
        )
    return figures


def _clock() -> tuple[float, float]:
    import resource

    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return time.perf_counter(), cpu


def _export_step(app: Any, out: Path) -> dict[str, float]:
    from feedserver.export import build_site

    wall, cpu = _clock()
    report = build_site(app, out)
    wall_after, cpu_after = _clock()
    assert not report.failed, report.failed
    return {"wall": wall_after - wall, "cpu": cpu_after - cpu, "skipped": report.skipped}


def rebuilds_in_process(seeds: str, out: str, changed: list[str]) -> dict[str, Any]:
    """Child side: load, build in full, build again unchanged, edit 1% and reload and build,
    all in this one process as --watch does (the reload is not counted: the build is)."""
    from feedserver import create_app, forkparse

    settings = {"seeds_dir": seeds, "base_url": BASE_URL, "stats_db": "", "cache_dir": ""}
    with forkparse.shared():
        app = create_app({**settings, "polite_polling": False})
    site = Path(out)
    full = _export_step(app, site)
    same = _export_step(app, site)
    trees.rewrite_titles(Path(seeds), changed, "Edited")
    app.extensions["feedserver.store"].reload()
    edited = _export_step(app, site)
    return {"full": full, "same": same, "edited": edited}


def main() -> None:
    """Command line: both comparisons at one size, printed as JSON lines."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    workdir = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.gettempdir()) / "fsb"
    for figure in versus_hugo(workdir, count, 1) + incremental(workdir, count, 1):
        print(figure)


if __name__ == "__main__":
    main()
