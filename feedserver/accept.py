"""Accept headers read once and only so far: the first MAX_ACCEPT_BYTES characters, of those
the first MAX_ACCEPT_ENTRIES entries, and of each entry the first MAX_PARAMETERS parameters.
Past these bounds a header is treated as if it ended there (an entry the byte limit cuts
through is dropped with the rest, and so are an entry's further parameters).

Werkzeug's parser costs about 7 µs an entry, and its matching goes over every entry again
for each media type asked about: 800 entries sent with every request (8 KB, which gunicorn
lets through) made each request cost 100 times a cached feed. Here a request's Accept is
read once, kept in its WSGI environ, and summed up in one pass: the best range of each
kind (`*/*`, `text/*`, `text/html`, ...), so that each question is a few lookups. No
browser or feed reader sends more than about ten entries.

The ranking is werkzeug's (MIMEAccept): of the ranges that match a media type, the most
specific one gives its quality (a type beats a wildcard, parameters add specificity; a range
with parameters other than q matches only through a wildcard subtype, as the types asked
about have none), then the higher quality. Entries with an invalid q, or without a
type/subtype, are ignored. Commas and semicolons separate entries and parameters even inside
a quoted string (no client quotes anything in Accept)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

MAX_ACCEPT_BYTES = 4096
MAX_ACCEPT_ENTRIES = 12
MAX_PARAMETERS = 4
# The only types asked about (feeds, pages, JSON and plain-text errors): ranges of other
# types are dropped as they are read.
ASKED_TYPES = frozenset({"*", "text", "application"})

# How specific a range is (type, subtype, parameters other than q), then its quality:
# of the ranges that match a media type, the greatest decides.
Rank = tuple[bool, bool, int, float]
# The greatest rank of each range a header names, by (type, subtype); only ranges that can
# match a type without parameters are kept ("text/html;level=1" matches none).
Summary = dict[tuple[str, str], Rank]

_ENVIRON_KEY = "feedserver.accept"
# A parameter: a token, "=" and a value (werkzeug skips any other part between semicolons).
_PARAMETER = re.compile(r";[ \t]*([\w!#$%&'*+\-.^`|~]+)=([^;]*)")
_QUALITY = re.compile(r"-?\d+(\.\d+)?")
_MEMO_CHARS = 64


def bounded_entries(header: str) -> list[str]:
    """The entries of an Accept header that are read: within the first MAX_ACCEPT_BYTES
    characters, whole, and no more than MAX_ACCEPT_ENTRIES of them."""
    entries = header[:MAX_ACCEPT_BYTES].split(",", MAX_ACCEPT_ENTRIES)
    if len(entries) > MAX_ACCEPT_ENTRIES:
        return entries[:MAX_ACCEPT_ENTRIES]  # the last element is the unsplit rest
    if len(header) > MAX_ACCEPT_BYTES:
        return entries[:-1]  # the entry the byte limit cuts through
    return entries


def _parameters(entry: str, start: int) -> tuple[int, float] | None:
    """The number of parameters other than q from `start` on, and the quality; None when
    the q is invalid (which invalidates the entry)."""
    extra, quality = 0, 1.0
    for key, text in _PARAMETER.findall(entry, start)[:MAX_PARAMETERS]:
        text = text.strip(" \t")
        if not text:
            continue  # no value: not a parameter, as werkzeug skips it
        if key != "q" and key != "Q":
            extra += 1
        elif _QUALITY.fullmatch(text) is None:
            return None
        else:
            quality = float(text)
            if not 0 <= quality <= 1:
                return None
    return extra, quality


def _media_range(entry: str) -> tuple[tuple[str, str], Rank] | None:
    """One entry as the (type, subtype) it names and its rank; None when it is ignored, can
    match no type asked about, or only types with parameters."""
    value, semicolon, _ = entry.partition(";")
    kind, slash, subtype = value.strip(" \t").lower().partition("/")
    if not slash or kind not in ASKED_TYPES:
        return None
    extra = subtype.count("/")  # werkzeug reads "text/*/x" as "text/*" with a parameter
    if extra:
        subtype = subtype.partition("/")[0]
    if kind == "*" and subtype != "*":
        return None  # "*/x" is no range
    quality = 1.0
    if semicolon:
        found = _parameters(entry, len(value))
        if found is None:
            return None
        extra, quality = extra + found[0], found[1]
    if subtype != "*" and extra:
        return None  # "text/html;level=1" is not text/html
    return (kind, subtype), (kind != "*", subtype != "*", extra, quality)


# Short entries are remembered: clients send the same few again and again.
_remembered_range = lru_cache(maxsize=4096)(_media_range)


def summarize(header: str) -> Summary:
    """The best rank of each range in the read part of an Accept header."""
    summary: Summary = {}
    for entry in bounded_entries(header):
        found = _remembered_range(entry) if len(entry) <= _MEMO_CHARS else _media_range(entry)
        if found is not None:
            key, rank = found
            current = summary.get(key)
            if current is None or rank > current:
                summary[key] = rank
    return summary


def summary_of(environ: dict[str, Any]) -> Summary:
    """The request's Accept summed up (empty without the header), on first use, and kept in
    its environ: the middlewares, the routes and the error handlers all ask."""
    found: Summary | None = environ.get(_ENVIRON_KEY)
    if found is None:
        header = environ.get("HTTP_ACCEPT")
        found = summarize(header) if isinstance(header, str) else {}
        environ[_ENVIRON_KEY] = found
    return found


def rank(summary: Summary, media_type: str) -> Rank | None:
    """The rank of the range that decides a media type's quality (a text or application
    type without parameters), or None when no range matches it."""
    kind, _, subtype = media_type.lower().partition("/")
    candidates = [summary.get(key) for key in ((kind, subtype), (kind, "*"), ("*", "*"))]
    return max((c for c in candidates if c is not None), default=None)


def quality(summary: Summary, media_type: str) -> float:
    """How much the header accepts a media type: 0 (not at all) to 1."""
    found = rank(summary, media_type)
    return found[3] if found is not None else 0.0


def best_match(summary: Summary, offered: Iterable[str]) -> str | None:
    """Of the offered media types, the one the header accepts best (werkzeug's best_match:
    the highest quality, then the most specific range, then the first offered)."""
    result, best = None, (0.0, (False, False, -1))
    for media_type in offered:
        found = rank(summary, media_type)
        if found is None or found[3] <= 0:
            continue
        candidate = (found[3], found[:3])
        if candidate[0] > best[0] or (candidate[0] == best[0] and candidate[1] > best[1]):
            result, best = media_type, candidate
    return result


def coding_quality(header: str, coding: str) -> float:
    """How much an Accept-Encoding header (read within the same bounds) accepts a coding:
    the highest quality of its own entries, else of `*`'s, else 0 (werkzeug's ranking)."""
    own: list[float] = []
    wildcard: list[float] = []
    for entry in bounded_entries(header):
        value, semicolon, _ = entry.partition(";")
        name = value.strip(" \t").lower()
        if name != coding and name != "*":
            continue
        found = _parameters(entry, len(value)) if semicolon else (0, 1.0)
        if found is None or found[0]:
            continue  # with parameters, an entry names no coding as such
        (own if name == coding else wildcard).append(found[1])
    return max(own or wildcard or [0.0])
