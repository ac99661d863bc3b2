"""Finding seed files and reading one file into an Article, or into the reason it cannot be one.

Rules, applied the same way to every field:
- a required field (`title`, `webUrl`, `publishedDateTime`) that is missing or unusable
  rejects the whole file;
- an optional field of the wrong type is dropped and reported, the article is still served;
- a list item of the wrong shape (a topic, image or related entry) is dropped and reported;
- `published` must be the boolean `true` to be served; anything else is reported and withheld.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from slugify import slugify

from .content import body_html
from .models import Article, Image, Provider, Related, Topic

logger = logging.getLogger(__name__)

SEED_SUFFIXES = frozenset({".txt", ".md", ".yaml", ".yml"})
# Hidden files and folders, and the temporary files editors leave beside the ones they edit.
_HIDDEN_PREFIXES = (".", "#", "~")
_TEMPORARY_SUFFIXES = ("~", "#")

_BOOL_TAG = "tag:yaml.org,2002:bool"


def _strict_booleans(base: Any) -> Any:
    """A safe loader class where only true/false are booleans (YAML 1.2), not yes/no/on/off:
    `published: yes` must not publish, and a title `No` stays text."""
    resolvers = {
        first: [(tag, pattern) for tag, pattern in entries if tag != _BOOL_TAG]
        for first, entries in base.yaml_implicit_resolvers.items()
    }
    loader: Any = type(f"Strict{base.__name__}", (base,), {"yaml_implicit_resolvers": resolvers})
    loader.add_implicit_resolver(
        _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    return loader


# libyaml's loader is about nine times faster; both are safe_load-level (no Python tags).
PurePythonLoader = _strict_booleans(yaml.SafeLoader)
YamlLoader = _strict_booleans(getattr(yaml, "CSafeLoader", yaml.SafeLoader))

# Characters XML 1.0 cannot carry (and U+FFFE/U+FFFF), removed from every served string.
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# scheme://[userinfo@]host[:port][/path?query#fragment], with no whitespace anywhere.
_HTTP_URL = re.compile(
    r"https?://(?:[^\s/?#@]*@)?(?:[^\s/?#@:\[\]]+|\[[0-9A-Fa-f:.]+\])(?::\d{0,5})?(?:[/?#]\S*)?",
    re.IGNORECASE,
)
# libyaml handled 10,000 nested levels here and crashed at 100,000; below this many marks
# (hence below this many characters) a document cannot nest deeply enough to matter.
_MAX_NESTING_MARKS = 5000
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class SeedError(Exception):
    """A seed file cannot become an article; the message says why in plain words."""


# Makes a SeedFile at C speed, skipping the named tuple's Python-level __new__.
_new_tuple = tuple.__new__


class SeedFile(NamedTuple):
    """A file found under the seeds directory, with what `stat` said of it.

    A named tuple rather than a dataclass: a reload makes one per file, 100,000 at a time.
    """

    path: str  # relative to the seeds directory, with forward slashes
    size: int
    mtime_ns: int
    inode: int

    @property
    def signature(self) -> tuple[int, int, int]:
        """What changes when the file's content may have changed."""
        return (self.size, self.mtime_ns, self.inode)


@dataclass(frozen=True, slots=True)
class ParsedSeed:
    """The outcome of reading one file: an article, or an error; warnings either way."""

    file: SeedFile
    article: Article | None
    error: str | None
    warnings: tuple[str, ...]


def _inside(root: str, target: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def scan_seed_files(root: str | Path) -> Iterator[SeedFile]:
    """Yield every seed file under root, recursively; raises OSError if root cannot be listed.

    Hidden and editor temporary files are skipped, directory symlinks are not followed, and a
    file symlink is followed only when it points inside root.
    """
    root_text = os.fspath(root)
    real_root = os.path.realpath(root_text)
    pending = [("", root_text)]
    first = True
    while pending:
        prefix, directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            if first:
                raise
            logger.warning("cannot list seed directory %s", prefix or ".")
            continue
        first = False
        # This loop runs for every file on every reload: it is kept to the bare minimum.
        for entry in entries:
            name = entry.name
            if name.startswith(_HIDDEN_PREFIXES) or name.endswith(_TEMPORARY_SUFFIXES):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((f"{prefix}{name}/", entry.path))
                    continue
                if name[name.rfind(".") :].lower() not in SEED_SUFFIXES:
                    continue
                if entry.is_symlink() and not _inside(real_root, os.path.realpath(entry.path)):
                    logger.warning(
                        "skipping %s%s: symlink leads outside the seeds dir", prefix, name
                    )
                    continue
                info = entry.stat()
            except OSError:
                continue  # vanished between listing and stat
            if info.st_mode & 0o170000 == 0o100000:  # a regular file (S_ISREG), from the stat
                yield _new_tuple(
                    SeedFile, (prefix + name, info.st_size, info.st_mtime_ns, info.st_ino)
                )


def read_seed_text(path: str | Path, max_bytes: int) -> str:
    """Read a seed file as UTF-8 text, refusing it unread when it is over max_bytes."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise SeedError(f"file is {size} bytes, over the limit of {max_bytes}")
            # Ask for the size stat gave (plus one byte, to see growth): asking for the
            # whole limit would allocate a buffer of max_bytes for every file.
            data = handle.read(size + 1)
            if len(data) > size:
                data += handle.read(max_bytes + 1 - len(data))
    except FileNotFoundError:
        raise SeedError("file vanished before it could be read") from None
    except IsADirectoryError:
        raise SeedError("is a directory, not a file") from None
    except PermissionError:
        raise SeedError("permission denied") from None
    except OSError as error:
        raise SeedError(f"cannot be read ({error.strerror})") from None
    if len(data) > max_bytes:
        raise SeedError(f"file is over the limit of {max_bytes} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SeedError(f"not valid UTF-8 (byte {error.start})") from None


def front_matter(text: str) -> str:
    """The YAML between the opening `---` line and the next; the whole text if there is none."""
    first_line_end = text.find("\n")
    first_line = text if first_line_end < 0 else text[:first_line_end]
    if first_line.rstrip() != "---":
        return text
    position = first_line_end
    while position >= 0:  # str.find is many times faster than a multiline regex here
        fence = text.find("\n---", position)
        if fence < 0:
            break
        line_end = text.find("\n", fence + 4)
        if not text[fence + 4 : line_end if line_end >= 0 else len(text)].strip(" \t\r"):
            return text[first_line_end + 1 : fence + 1]
        position = fence + 4
    raise SeedError("front matter has no closing '---' line")


def markdown_body(text: str, block: str | None = None) -> str:
    """The text after the front matter's closing `---` line: the article's Markdown body;
    "" when the file is a whole YAML mapping or holds nothing after its front matter.
    `block` is front_matter(text) when the caller has it already."""
    if block is None:
        block = front_matter(text)
    if block is text:
        return ""
    # front_matter's block runs from after the first line to the closing line's start.
    closing_start = text.find("\n") + 1 + len(block)
    closing_end = text.find("\n", closing_start)
    if closing_end < 0:
        return ""
    body = text[closing_end + 1 :]
    return body if body.strip() else ""


def load_yaml_mapping(source: str) -> dict[str, Any]:
    """Parse YAML safely into a mapping; raises SeedError with the line of the problem."""
    # libyaml composes nested nodes by C recursion and crashes the process on very deep
    # nesting; a document that could nest deeply goes to the pure-Python loader, which
    # stops at Python's recursion limit instead.
    deep = len(source) > _MAX_NESTING_MARKS and _nesting_marks(source) > _MAX_NESTING_MARKS
    loader = PurePythonLoader if deep else YamlLoader
    try:
        data = yaml.load(source, Loader=loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = error.problem or "syntax error"
        raise SeedError(f"invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as error:
        raise SeedError(f"invalid YAML: {error}") from None
    except RecursionError:
        raise SeedError("YAML is nested too deeply") from None
    if data is None:
        raise SeedError("empty document")
    if not isinstance(data, dict):
        raise SeedError(f"YAML is a {_kind(data)}, not a mapping of fields")
    return data


def _nesting_marks(source: str) -> int:
    """An upper bound on how deeply a YAML text can nest, counted at C speed."""
    return sum(source.count(mark) for mark in ("[", "{", "- ", "? "))


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return "single value"


def clean_text(value: str) -> str:
    """Remove characters that XML cannot carry, and surrounding whitespace."""
    if value.isascii() and value.isprintable():  # the common case, checked at C speed
        return value.strip()
    return _XML_UNSAFE.sub("", value).strip()


def http_url(value: Any) -> str | None:
    """The value if it is an absolute http(s) URL, else None."""
    if not isinstance(value, str):
        return None
    url = clean_text(value)
    return url if _HTTP_URL.fullmatch(url) else None


def parse_datetime(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from a YAML timestamp, date or ISO 8601 text."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def _short_text(value: Any) -> str | None:
    """Text from a string or a plain number; None for anything else."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


@lru_cache(maxsize=65536)
def topic_for(name: str) -> Topic | None:
    """The topic of a name; names that slugify the same share a key."""
    key = slugify(name)
    return Topic(key, name) if key else None


@lru_cache(maxsize=65536)
def provider_for(name: str, domain: str) -> Provider | None:
    """The provider of a name and domain, keyed by the bare lowercase domain or the name's slug."""
    host = domain.strip().lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    if host and not _DOMAIN.match(host):
        host = slugify(host)
    key = host or slugify(name)
    if not key:
        return None
    return Provider(key, name or host, host)


class _Reader:
    """Turns one front-matter mapping into an Article, collecting warnings as it goes."""

    def __init__(self, data: dict[str, Any], body: str = "") -> None:
        self.data = data
        self.body = body
        self.warnings: list[str] = []

    def required_text(self, field: str) -> str:
        if field not in self.data or self.data[field] is None:
            raise SeedError(f"missing required field '{field}'")
        value = self.data[field]
        text = _short_text(value)
        if text is None:
            raise SeedError(f"'{field}' must be text, got a {_kind(value)}")
        if not text:
            raise SeedError(f"'{field}' is empty")
        return text

    def optional_text(self, field: str) -> str:
        value = self.data.get(field)
        if value is None:
            return ""
        text = _short_text(value)
        if text is None:
            self.warnings.append(f"'{field}' is not text; dropped")
            return ""
        return text

    def optional_number(self, field: str) -> float | None:
        value = self.data.get(field)
        if value is None:
            return None
        number = _number(value)
        if number is None:
            self.warnings.append(f"'{field}' is not a number; dropped")
        return number

    def optional_list(self, field: str) -> list[Any]:
        value = self.data.get(field)
        if value is None:
            return []
        if not isinstance(value, list):
            self.warnings.append(f"'{field}' must be a list, got a {_kind(value)}; dropped")
            return []
        return value

    def published(self) -> bool:
        if "published" not in self.data:
            self.warnings.append("'published' is missing; treated as not published")
            return False
        value = self.data["published"]
        if not isinstance(value, bool):
            self.warnings.append(
                f"'published' must be true or false, got {value!r}; treated as not published"
            )
            return False
        return value

    def provider(self) -> Provider | None:
        value = self.data.get("provider")
        if value is None:
            return None
        if not isinstance(value, dict):
            self.warnings.append(f"'provider' must be a mapping, got a {_kind(value)}; dropped")
            return None
        name = _short_text(value.get("name")) or ""
        domain = _short_text(value.get("domain")) or ""
        provider = provider_for(name, domain)
        if provider is None:
            self.warnings.append("'provider' has neither a name nor a domain; dropped")
        return provider

    def topics(self) -> tuple[Topic, ...]:
        topics: dict[str, Topic] = {}
        for position, value in enumerate(self.optional_list("topics"), 1):
            name = _short_text(value)
            topic = topic_for(name) if name else None
            if topic is None:
                self.warnings.append(f"topic {position} is not a usable name; dropped")
            else:
                topics.setdefault(topic.key, topic)
        return tuple(topics.values())

    def images(self, items: list[Any], where: str) -> tuple[Image, ...]:
        images = []
        for position, value in enumerate(items, 1):
            url = http_url(value.get("url")) if isinstance(value, dict) else None
            if url is None:
                self.warnings.append(f"{where} {position} has no absolute http(s) url; dropped")
                continue
            width = value.get("width")
            height = value.get("height")
            images.append(
                Image(
                    url,
                    width if _is_size(width) else 0,
                    height if _is_size(height) else 0,
                    self._image_title(value.get("title")),
                )
            )
        return tuple(images)

    def _image_title(self, value: Any) -> str:
        """The image's title, or "" when it only repeats the article's (the usual case): the
        content falls back to the article's title, and memory does not hold it twice."""
        title = _short_text(value) or ""
        return "" if title == _short_text(self.data.get("title")) else title

    def related(self) -> tuple[Related, ...]:
        related = []
        for position, value in enumerate(self.optional_list("related"), 1):
            if not isinstance(value, dict):
                self.warnings.append(f"related {position} is not a mapping; dropped")
                continue
            title = _short_text(value.get("title"))
            url = http_url(value.get("webUrl"))
            if not title or url is None:
                self.warnings.append(
                    f"related {position} needs a title and an absolute http(s) webUrl; dropped"
                )
                continue
            provider = value.get("provider")
            provider_name = ""
            if isinstance(provider, dict):
                provider_name = _short_text(provider.get("name")) or ""
            # Interned: a few hundred providers' names recur across 100,000 articles.
            related.append(Related(title, url, sys.intern(provider_name)))
        return tuple(related)

    def article(self) -> Article:
        title = self.required_text("title")
        if "webUrl" not in self.data:
            raise SeedError("missing required field 'webUrl'")
        url = http_url(self.data["webUrl"])
        if url is None:
            raise SeedError("'webUrl' must be an absolute http or https URL")
        if "publishedDateTime" not in self.data:
            raise SeedError("missing required field 'publishedDateTime'")
        published_at = parse_datetime(self.data["publishedDateTime"])
        if published_at is None:
            raise SeedError(
                f"'publishedDateTime' is not a date and time: {self.data['publishedDateTime']!r}"
            )
        return Article(
            url=url,
            title=title,
            excerpt=self.optional_text("excerpt"),
            published_at=published_at,
            provider=self.provider(),
            topics=self.topics(),
            images=self.images(self.optional_list("images"), "image"),
            related=self.related(),
            quality=self.optional_number("quality"),
            heat=self.optional_number("heat"),
            published=self.published(),
            body_html=self.body_html(url),
        )

    def body_html(self, url: str) -> str:
        """The Markdown body as sanitized HTML; a body that cannot be rendered is dropped."""
        if not self.body:
            return ""
        try:
            return body_html(self.body, url)
        except (ValueError, RecursionError) as error:
            self.warnings.append(f"the Markdown body cannot be rendered ({error}); dropped")
            return ""


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100_000


def article_from_mapping(data: dict[str, Any], body: str = "") -> tuple[Article, tuple[str, ...]]:
    """Build an Article from front matter and its Markdown body; raises SeedError when a
    required field is unusable."""
    reader = _Reader(data, body)
    article = reader.article()
    return article, tuple(reader.warnings)


def parse_seed_file(root: str | Path, seed: SeedFile, max_bytes: int) -> ParsedSeed:
    """Read one seed file into an article or an error; never raises for bad content."""
    try:
        text = read_seed_text(os.path.join(root, seed.path), max_bytes)
        block = front_matter(text)
        article, warnings = article_from_mapping(
            load_yaml_mapping(block), markdown_body(text, block)
        )
    except SeedError as error:
        return ParsedSeed(seed, None, str(error), ())
    return ParsedSeed(seed, article, None, warnings)
