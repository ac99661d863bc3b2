"""Topic and provider keys: the slug of a name, made safe for URL paths and file names, and
the Topic or Provider a name (and domain) stands for. Shared by reading seeds, the query
parameters that name topics and providers, and the redirects of old spellings."""

from __future__ import annotations

import hashlib
import html
import re
from functools import lru_cache

from slugify import slugify

from .messages import short_repr
from .models import Provider, Topic

# A host name: labels of 1-63 letters, digits and inner hyphens, 253 characters in all.
# Used with fullmatch only (`$` would let a trailing newline through).
_DOMAIN = re.compile(
    r"(?=.{1,253}\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
# Symbols that tell names apart (`C`, `C++`, `C#`; `R&D`) are spelled out in slugs rather
# than dropped; case, spacing and accents still make no difference.
_SLUG_REPLACEMENTS = (("+", " plus "), ("#", " sharp "), ("&", " and "), ("@", " at "))
# Topic and provider keys become URL paths, where `<key>.rss` is a feed, and file names in
# the static export (`<key>.atom`, `<key>/index.html`; at most 255 bytes): a key that ends
# like a feed or is longer than this is replaced by a shortened one with a hash of the whole.
# (The extensions are those of urls.FEED_EXTENSIONS, which cannot be imported here.)
MAX_KEY_LENGTH = 100
_FEED_ENDINGS = (".rss", ".atom", ".json")


def clean_name(name: str) -> str:
    """A topic or provider name as shown: every run of whitespace one space, none at the ends
    (`Machine  Learning` is `Machine Learning`)."""
    return " ".join(name.split())


def name_slug(name: str) -> str:
    """The slug of a topic or provider name: `Microsoft AI` and `mícrosoft  ai` give
    `microsoft-ai`; `C`, `C++` and `C#` give `c`, `c-plus-plus` and `c-sharp`."""
    return str(slugify(html.unescape(name), replacements=_SLUG_REPLACEMENTS))


def safe_key(key: str) -> str:
    """The key itself, or, when it ends like a feed or is too long for a file name, its start
    and a hash of the whole: deterministic, so every worker and build agree."""
    if len(key) <= MAX_KEY_LENGTH and not key.endswith(_FEED_ENDINGS):
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return f"{key[: MAX_KEY_LENGTH - len(digest) - 1].rstrip('.-')}-{digest}"


def unsafe_key_note(what: str, natural: str, key: str) -> str | None:
    """The warning for a key that `safe_key` had to change, or None."""
    if key == natural:
        return None
    why = "ends like a feed" if natural.endswith(_FEED_ENDINGS) else "is too long for a file name"
    return f"{what} key {short_repr(natural)} {why}; its key is {key!r}"


@lru_cache(maxsize=65536)
def topic_and_note(name: str) -> tuple[Topic | None, str | None]:
    slug = name_slug(name)
    if not slug:
        return None, None
    key = safe_key(slug)
    return Topic(key, clean_name(name)), unsafe_key_note("topic", slug, key)


def topic_for(name: str) -> Topic | None:
    """The topic of a name; names with the same slug (see `name_slug`) share a key."""
    return topic_and_note(name)[0]


@lru_cache(maxsize=65536)
def provider_and_note(name: str, domain: str) -> tuple[Provider | None, str | None]:
    host = domain.strip().lower().rstrip(".").removeprefix("www.")
    if host and not _DOMAIN.fullmatch(host):
        host = name_slug(host)
    natural = host or name_slug(name)
    if not natural:
        return None, None
    key = safe_key(natural)
    shown = clean_name(name) or host
    return Provider(key, shown, host), unsafe_key_note("provider", natural, key)


def provider_for(name: str, domain: str) -> Provider | None:
    """The provider of a name and domain, keyed by the bare lowercase domain or the name's slug."""
    return provider_and_note(name, domain)[0]
