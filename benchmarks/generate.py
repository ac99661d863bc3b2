"""Write N realistic seed files, deterministic for a seed: hundreds of topics and providers,
related coverage, images, and a share of unpublished articles.

    python -m benchmarks.generate OUTDIR N [--seed 1] [--unpublished 0.1]
"""

from __future__ import annotations

import argparse
import base64
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

WORDS = (  # noqa: SIM905 - one sentence reads better than a column of words
    "cloud chip model data market launch update security privacy robot energy battery network "
    "startup funding quantum vision language research policy court trial game stream device "
    "server cluster training inference open source platform mobile satellite vehicle health"
).split()
START = datetime(2018, 1, 1, tzinfo=UTC)


def _title(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize()


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SeedWriter:
    """Makes seed documents from one random generator, so a seed value gives the same files."""

    def __init__(
        self, seed: int, topics: int, providers: int, unpublished: float, related: int | None
    ) -> None:
        self.rng = random.Random(seed)
        self.related = related  # related items per article; None: 0 to 4 at random
        self.topics = [f"{_title(self.rng, 2)} {n}" for n in range(topics)]
        self.providers = [(f"Provider {n}", f"provider{n}.example.com") for n in range(providers)]
        self.unpublished = unpublished

    def _images(self, domain: str, indent: str) -> str:
        n = self.rng.randint(1000, 9999)
        return (
            f"{indent}images:\n"
            f'{indent}  - url: "https://img.{domain}/{n}.jpg"\n'
            f"{indent}    width: {self.rng.choice((640, 800, 1024))}\n"
            f"{indent}    height: {self.rng.choice((360, 480, 576))}\n"
        )

    def _related(self, when: datetime) -> str:
        lines = ["related:"]
        related_when = (when - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        count = self.rng.randint(0, 4) if self.related is None else self.related
        for _ in range(count):
            name, domain = self.rng.choice(self.providers)
            slug = self.rng.randint(10**8, 10**9)
            lines += [
                f"  - title: {_quoted(_title(self.rng, 8))}",
                f"    excerpt: {_quoted(_title(self.rng, 30))}",
                f"    publishedDateTime: {related_when}",
                f'    webUrl: "https://{domain}/news/{slug}"',
                "    type: article",
                "    provider:",
                f"      name: {name}",
                f"      domain: {domain}",
                f"    quality: {self.rng.randint(0, 120)}",
                self._images(domain, "    ").rstrip("\n"),
            ]
        return "\n".join(lines) + "\n" if len(lines) > 1 else "related: []\n"

    def document(self, index: int) -> str:
        """The text of seed file number index."""
        rng = self.rng
        when = START + timedelta(minutes=rng.randint(0, 4 * 365 * 24 * 60))
        name, domain = rng.choice(self.providers)
        topics = rng.sample(self.topics, rng.randint(1, 3))
        published = "false" if rng.random() < self.unpublished else "true"
        secured = base64.b64encode(rng.randbytes(300)).decode()
        return (
            "---\ncategory: news\n"
            f"title: {_quoted(_title(rng, 9))} \n"
            f"excerpt: {_quoted(_title(rng, 35))}\n"
            f"publishedDateTime: {when.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
            f'webUrl: "https://{domain}/{when:%Y/%m/%d}/article-{index}"\n'
            f'ampWebUrl: "https://amp.{domain}/{when:%Y/%m/%d}/article-{index}"\n'
            "type: article\n"
            f"quality: {rng.randint(0, 120)}\nheat: {rng.randint(-1, 200)}\n"
            f"published: {published}\n\n"
            f"provider:\n  name: {name}\n  domain: {domain}\n\n"
            "topics:\n"
            + "".join(f"  - {topic}\n" for topic in topics)
            + "\n"
            + self._images(domain, "")
            + "\n"
            + self._related(when)
            + f'\nsecured: "{secured}"\n---\n'
        )


def generate(
    out: Path,
    count: int,
    seed: int = 1,
    unpublished: float = 0.1,
    topics: int | None = None,
    providers: int | None = None,
    related: int | None = None,
) -> list[Path]:
    """Write count seed files into out, 1,000 to a folder; returns their paths. `related`
    fixes the related items of every article (each with its excerpt, provider and image)."""
    topics = topics or max(10, min(500, count // 100))
    providers = providers or max(5, min(300, count // 200))
    writer = SeedWriter(seed, topics, providers, unpublished, related)
    paths = []
    for index in range(count):
        folder = out / f"{index // 1000:03d}"
        if index % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{index:06d}.txt"
        path.write_text(writer.document(index), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    """Command line: write the files."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--unpublished", type=float, default=0.1)
    parser.add_argument("--related", type=int, help="related items per article (default 0-4)")
    args = parser.parse_args()
    generate(args.out, args.count, args.seed, args.unpublished, related=args.related)


if __name__ == "__main__":
    main()
