"""What a snapshot file holds (snapshot.py writes and reads the file): a magic line, then
msgpack (never pickle: a snapshot is data, and reading one runs no code) holding a header
and one record per seed file, each a plain list of field values in its class's field order;
and the code version a header carries, so that a snapshot written by other code is ignored."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import io
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import msgpack
import yaml

from .file_state import FileState
from .load.records import ParsedSeed, SeedFile
from .models import Article, Provider, Topic

MAGIC = b"feedserver-snapshot\n"
FORMAT_VERSION = 2
DIGEST_BYTES = 32
READ_BYTES = 1 << 20


# Everything that shapes what a snapshot stores: the modules that read a file into an
# article and its cleaned body (the sanitizer's allow-list is in load/bodies.py), the store's
# file states, this encoding, and the libraries whose output they keep (parsed YAML, rendered
# and cleaned HTML, slugs and their transliteration, the msgpack encoding).
SHAPING_MODULES = (
    *(f"load.{name}" for name in ("records", "files", "front_matter", "yaml_loader")),
    *(f"load.{name}" for name in ("fields", "bodies", "seed_file")),
    "keys",
    "messages",
    "models",
    "file_state",
    "store",
    "snapshot_format",
)
SHAPING_LIBRARIES = ("PyYAML", "cmarkgfm", "nh3", "msgpack", "python-slugify", "text-unidecode")


def _library_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def code_version() -> str:
    """What the stored records depend on: every module and library in SHAPING_MODULES and
    SHAPING_LIBRARIES, libyaml, and Python. Any change makes older snapshots unusable."""
    digest = hashlib.blake2b(digest_size=12)
    for name in SHAPING_MODULES:
        module = importlib.import_module(f"feedserver.{name}")
        digest.update(Path(module.__file__ or "").read_bytes())
    for distribution in SHAPING_LIBRARIES:
        digest.update(f"{distribution} {_library_version(distribution)}\n".encode())
    digest.update(f"{yaml.__with_libyaml__} {sys.version_info[:2]}".encode())
    return digest.hexdigest()


# --- encoding: plain lists of field values, in each class's field order ---------------------

_ARTICLE_FIELDS = [f.name for f in dataclasses.fields(Article)]
_SEED_EXTRA_FIELDS = [
    f.name
    for f in dataclasses.fields(ParsedSeed)
    if f.name not in ("file", "article", "error", "warnings")
]


def _encode_article(article: Article) -> list[Any]:
    values: list[Any] = []
    for name in _ARTICLE_FIELDS:
        value = getattr(article, name)
        if name == "provider":
            value = None if value is None else [value.key, value.name, value.domain]
        elif name == "topics":
            value = [[topic.key, topic.name] for topic in value]
        values.append(value)
    return values


def _encode_seed(seed: ParsedSeed) -> list[Any]:
    article = None if seed.article is None else _encode_article(seed.article)
    extras = [getattr(seed, name) for name in _SEED_EXTRA_FIELDS]
    return [list(seed.file), article, seed.error, list(seed.warnings), extras]


def write_to(out: BinaryIO, states: dict[str, FileState], header: dict[str, Any]) -> int:
    """Write a snapshot of these file states, record by record (a whole snapshot is never
    held in memory); returns the bytes written. The last DIGEST_BYTES are a checksum of all
    the others, so a truncated or damaged file is recognised."""
    digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
    packer = msgpack.Packer(datetime=True)
    written = 0

    def put(chunk: bytes) -> None:
        nonlocal written
        digest.update(chunk)
        out.write(chunk)
        written += len(chunk)

    put(MAGIC + packer.pack({**header, "files": len(states)}))
    pending: list[bytes] = []
    for state in states.values():
        # A file whose latest version parsed is its own good version: kept once.
        good = state.good
        kept = None if good is None or good is state.latest else _encode_seed(good)
        record = [_encode_seed(state.latest), kept, state.withheld, state.withheld_url]
        pending.append(packer.pack(record))
        if len(pending) >= 1000:
            put(b"".join(pending))
            pending.clear()
    put(b"".join(pending))
    out.write(digest.digest())
    return written + DIGEST_BYTES


def encode(states: dict[str, FileState], header: dict[str, Any]) -> bytes:
    """The bytes of a snapshot of these file states."""
    out = io.BytesIO()
    write_to(out, states, header)
    return out.getvalue()


class _Decoder:
    """Rebuilds articles from records, sharing topics and providers as the parser does."""

    def __init__(self) -> None:
        self.topics: dict[tuple[str, str], Topic] = {}
        self.providers: dict[tuple[str, str, str], Provider] = {}

    def article(self, values: list[Any]) -> Article:
        fields = dict(zip(_ARTICLE_FIELDS, values, strict=True))
        provider = fields["provider"]
        if provider is not None:
            key = tuple(provider)
            fields["provider"] = self.providers.get(key) or self.providers.setdefault(
                key, Provider(*key)
            )
        fields["topics"] = tuple(
            self.topics.get(key) or self.topics.setdefault(key, Topic(*key))
            for key in map(tuple, fields["topics"])
        )
        if not isinstance(fields["published_at"], datetime):
            raise ValueError("publishedDateTime is not a timestamp")
        return Article(**fields)

    def seed(self, values: list[Any]) -> ParsedSeed:
        file, article, error, warnings, extras = values
        return ParsedSeed(
            SeedFile(*file),
            None if article is None else self.article(article),
            error,
            tuple(warnings),
            **dict(zip(_SEED_EXTRA_FIELDS, extras, strict=True)),
        )

    def state(self, values: list[Any]) -> FileState:
        latest_values, good_values, withheld, withheld_url = values
        latest = self.seed(latest_values)
        good = None if good_values is None else self.seed(good_values)
        if good is None and latest.error is None:
            good = latest
        if not isinstance(withheld_url, str | None):
            raise ValueError("a withheld webUrl is not text")
        return FileState(latest, good, bool(withheld), withheld_url)


def read_from(handle: BinaryIO, size: int, expected: dict[str, Any]) -> dict[str, FileState]:
    """The file states of a snapshot of `size` bytes, decoded as it is read; raises
    ValueError saying why it cannot be used."""
    if size < len(MAGIC) + DIGEST_BYTES or handle.read(len(MAGIC)) != MAGIC:
        raise ValueError("not a feedserver snapshot")
    digest = hashlib.blake2b(MAGIC, digest_size=DIGEST_BYTES)
    unpacker = msgpack.Unpacker(raw=False, timestamp=3, strict_map_key=True, use_list=False)
    left = size - len(MAGIC) - DIGEST_BYTES
    header: dict[str, Any] | None = None
    decoder = _Decoder()
    states: dict[str, FileState] = {}
    try:
        while left > 0:
            chunk = handle.read(min(left, READ_BYTES))
            if not chunk:
                raise ValueError("truncated")
            left -= len(chunk)
            digest.update(chunk)
            unpacker.feed(chunk)
            for item in unpacker:
                if header is None:
                    header = _checked_header(item, expected)
                    continue
                state = decoder.state(item)
                states[state.latest.file.path] = state
    except (TypeError, KeyError, msgpack.UnpackException) as error:
        raise ValueError(f"records unreadable ({error})") from None
    if handle.read(DIGEST_BYTES + 1) != digest.digest():
        raise ValueError("truncated or corrupt (checksum differs)")
    if header is None or len(states) != header.get("files"):
        raise ValueError("record count differs from the header")
    return states


def _checked_header(item: Any, expected: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ValueError("header unreadable")
    for key, value in expected.items():
        if item.get(key) != value:
            raise ValueError(f"written for another {key} ({item.get(key)!r})")
    return item


def decode(data: bytes, expected: dict[str, Any]) -> dict[str, FileState]:
    """The file states of a snapshot's bytes; raises ValueError saying why they are unusable."""
    return read_from(io.BytesIO(data), len(data), expected)
