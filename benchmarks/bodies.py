"""What a Markdown body costs: reading the same seed files with and without a body, side by
side in one run, and the memory the sanitized HTML takes.

    python -m benchmarks.bodies [--files 2000] [--rounds 3]

The files are the benchmark corpus's own (benchmarks/generate.py); the bodied twin of each
has a typical article body after its front matter (about 2 KB of Markdown: paragraphs, a
heading, links, a relative image, a list, a quote and a bit of raw HTML to clean). Rounds
alternate between the two sets, and the best round of each is kept.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

from feedserver.load.records import ParsedSeed, SeedFile
from feedserver.load.seed_file import parse_seed_file

from .generate import SeedWriter

PARAGRAPH = (
    "The company said on Tuesday that the new system, built with partners over two years, "
    "would reach **every region** by the end of the year. Analysts at [a research firm]"
    "(https://research.example.com/report?id=42) called it *a significant step*, while "
    "critics pointed to [earlier delays](../2019/delays.html).\n\n"
)
BODY = (
    PARAGRAPH * 2
    + "## What changes\n\n"
    + "- faster builds\n- lower prices\n- [the full list](changes.html)\n\n"
    + '![The new data centre](images/centre.jpg "The centre")\n\n'
    + "> We expect demand to double, the chief executive said.\n\n"
    + PARAGRAPH * 3
    + '<p onclick="track()">Sponsored <script>track()</script></p>\n'
)


def _write(root: Path, count: int, with_body: bool) -> list[SeedFile]:
    writer = SeedWriter(1, 50, 20, 0.0, None)
    seeds = []
    for index in range(count):
        path = root / f"{index:06d}.md"
        path.write_text(writer.document(index) + (BODY if with_body else ""), "utf-8")
        info = path.stat()
        seeds.append(SeedFile(path.name, info.st_size, info.st_mtime_ns, info.st_ino))
    return seeds


def _read(root: Path, seeds: list[SeedFile]) -> tuple[float, list[ParsedSeed]]:
    gc.disable()
    try:
        start = time.perf_counter()
        parsed = [parse_seed_file(root, seed, 1 << 20) for seed in seeds]
        return time.perf_counter() - start, parsed
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    """Print the time per 1,000 files with and without a body, their ratio, and the HTML size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        plain_root, body_root = Path(folder, "plain"), Path(folder, "body")
        plain_root.mkdir()
        body_root.mkdir()
        plain_seeds = _write(plain_root, args.files, False)
        body_seeds = _write(body_root, args.files, True)
        best = {"plain": float("inf"), "body": float("inf")}
        parsed: list[ParsedSeed] = []
        for _ in range(args.rounds):
            seconds, _ = _read(plain_root, plain_seeds)
            best["plain"] = min(best["plain"], seconds)
            seconds, parsed = _read(body_root, body_seeds)
            best["body"] = min(best["body"], seconds)
        articles = [seed.article for seed in parsed if seed.article is not None]
        assert len(articles) == args.files and all(a.body_html for a in articles)
        html_bytes = sum(len(a.body_html.encode("utf-8")) for a in articles) / len(articles)
        markdown_bytes = len(BODY.encode("utf-8"))
    per_thousand = {name: seconds * 1000 / args.files * 1000 for name, seconds in best.items()}
    print(f"files: {args.files} each, best of {args.rounds} rounds, cpus: {os.cpu_count()}")
    print(f"without a body: {per_thousand['plain']:.1f} ms per 1,000 files")
    print(f"with a body:    {per_thousand['body']:.1f} ms per 1,000 files")
    print(f"ratio:          {best['body'] / best['plain']:.2f}x")
    print(f"body: {markdown_bytes} bytes of Markdown -> {html_bytes:.0f} bytes of HTML kept")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
