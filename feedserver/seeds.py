"""Which files are seed files (tree.py scans by these rules) and reading one into an Article,
or into the reason it cannot be one.

Rules, applied the same way to every field:
- a required field (`title`, `webUrl`, `publishedDateTime`) that is missing or unusable
  rejects the whole file;
- an optional field of the wrong type is dropped and reported, the article is still served;
- a list item of the wrong shape (a topic, image or related entry) is dropped and reported;
- `published` must be the boolean `true` to be served; anything else is reported and withheld;
- whatever goes wrong reading one file (the file system, the YAML loader, our conversion) is
  that file's error, never an exception out of `parse_seed_file`.
"""

from __future__ import annotations

import errno
import hashlib
import html
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from slugify import slugify

from .content import body_html
from .models import Article, Image, Provider, Related, Topic, pack_images, pack_related

SEED_SUFFIXES = frozenset({".txt", ".md", ".yaml", ".yml"})
# Hidden files and folders, and the temporary files editors leave beside the ones they edit.
_HIDDEN_PREFIXES = (".", "#", "~")
_TEMPORARY_SUFFIXES = ("~", "#")

_BOOL_TAG = "tag:yaml.org,2002:bool"
_YAML_TAG = "tag:yaml.org,2002:"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names the same key twice; `context_mark` is where it was first named."""


def _one_line(error: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, cut at limit characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _checked(kind: str, construct: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A scalar constructor whose failures are YAML errors at the value's line.

    PyYAML's own constructors raise ValueError (`2024-02-30`, `!!int 0x`, an offset of
    `+25:00`), KeyError (`!!bool maybe`), AttributeError (`!!timestamp soon`) or
    OverflowError, with no line; here every one of them becomes a ConstructorError.
    """

    def construct_checked(loader: Any, node: Any) -> Any:
        try:
            return construct(loader, node)
        except yaml.YAMLError:
            raise
        except Exception as error:
            # A KeyError or AttributeError only repeats the value, or says nothing useful.
            silent = isinstance(error, KeyError | AttributeError)
            detail = "" if silent else f" ({_one_line(error, 100)})"
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{_short_repr(node.value)} is not a valid {kind}{detail}",
                node.start_mark,
            ) from None

    return construct_checked


class _Unusual(Exception):
    """A document the plain constructor leaves to PyYAML's own (see construct_document)."""


# The scalar tags the plain constructor builds with the loader's own (checked) constructors.
_PLAIN_SCALAR_TAGS = frozenset(
    _YAML_TAG + kind for kind in ("null", "bool", "int", "float", "timestamp")
)
_STR_TAG = _YAML_TAG + "str"
_MAP_TAG = _YAML_TAG + "map"
_SEQ_TAG = _YAML_TAG + "seq"


class _SeedConstructor:
    """Mixed into the loaders: a key named twice in one mapping is an error, not last-wins
    (`published: false` above a forgotten `published: true` must not publish). Keys that a
    `<<` merge brings in may still be overridden, as YAML allows.

    Documents are built by a plain recursive constructor first: PyYAML's generic one (its
    recursion bookkeeping, deferred construction, tag dispatch per node) costs more than
    the parsing for a front matter of short scalars. Anything beyond plain mappings,
    sequences and the standard scalar tags (merges, other tags, a repeated key, a value that
    fails) goes to PyYAML's constructor instead, so results and errors are its own.
    """

    def construct_document(self, node: Any) -> Any:
        try:
            return self._plain(node, {})
        except (_Unusual, RecursionError):
            pass
        except Exception:  # PyYAML's constructor raises the error itself, in its own order
            pass
        return super().construct_document(node)  # type: ignore[misc]

    def _plain(self, node: Any, built: dict[int, Any]) -> Any:
        kind = type(node)
        tag = node.tag
        if kind is yaml.ScalarNode:
            if tag == _STR_TAG:
                return node.value
            if tag in _PLAIN_SCALAR_TAGS:
                return self.yaml_constructors[tag](self, node)  # type: ignore[attr-defined]
            raise _Unusual
        # A node an alias repeats is built once and shared, as PyYAML does (so "billion
        # laughs" stays small); one that contains itself is left to PyYAML.
        done = built.get(id(node), built)
        if done is not built:
            if done is None:
                raise _Unusual
            return done
        built[id(node)] = None
        result: Any
        if kind is yaml.MappingNode and tag == _MAP_TAG:
            result = {}
            for key_node, value_node in node.value:
                key = self._plain(key_node, built)
                if key in result or key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Unusual
                result[key] = self._plain(value_node, built)
        elif kind is yaml.SequenceNode and tag == _SEQ_TAG:
            result = [self._plain(item, built) for item in node.value]
        else:
            raise _Unusual
        built[id(node)] = result
        return result

    def flatten_mapping(self, node: Any) -> None:
        own = node.value  # the base class deletes `<<` keys from this very list in place
        super().flatten_mapping(node)  # type: ignore[misc]
        if node.value is not own:  # it put the merged keys in front of the mapping's own
            node.merged_pairs = len(node.value) - len(own)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, found a {node.id}", node.start_mark
            )
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = yaml.constructor.BaseConstructor.construct_mapping(
            self,  # type: ignore[arg-type]
            node,
            deep,
        )
        # Fewer keys than pairs: a duplicate, or merged keys the mapping overrides. Only then
        # are its own keys compared, so a normal mapping pays one length comparison.
        if len(mapping) < len(node.value):
            first_seen: dict[Any, Any] = {}
            for key_node, _ in node.value[getattr(node, "merged_pairs", 0) :]:
                key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
                if key in first_seen:
                    raise DuplicateKeyError(
                        None,
                        first_seen[key].start_mark,
                        f"duplicate key {_short_repr(key)}",
                        key_node.start_mark,
                    )
                first_seen[key] = key_node
        return mapping


def _seed_loader(base: Any) -> Any:
    """A safe loader class where only true/false are booleans (YAML 1.2), not yes/no/on/off
    (`published: yes` must not publish, and a title `No` stays text), duplicate keys are
    errors, and no scalar can fail without naming its line."""
    resolvers = {
        first: [(tag, pattern) for tag, pattern in entries if tag != _BOOL_TAG]
        for first, entries in base.yaml_implicit_resolvers.items()
    }
    loader: Any = type(
        f"Seed{base.__name__}", (_SeedConstructor, base), {"yaml_implicit_resolvers": resolvers}
    )
    loader.add_implicit_resolver(
        _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    # Only these can fail outside PyYAML's own errors (text and null never do, and wrapping
    # them would slow down every string of every file).
    for kind in ("bool", "int", "float", "timestamp", "binary"):
        tag = _YAML_TAG + kind
        loader.add_constructor(tag, _checked(kind, base.yaml_constructors[tag]))
    return loader


# libyaml's loader is about nine times faster; both are safe_load-level (no Python tags).
PurePythonLoader = _seed_loader(yaml.SafeLoader)
YamlLoader = _seed_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))

# Characters XML 1.0 cannot carry (and U+FFFE/U+FFFF), and the bidirectional controls that
# can make a title read differently from what it says (U+202E turns the rest of it around),
# removed from every served string.
_UNSAFE_CHARACTERS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# scheme://[userinfo@]host[:port][/path?query#fragment], with no whitespace anywhere.
_HTTP_URL = re.compile(
    r"https?://(?:[^\s/?#@]*@)?(?:[^\s/?#@:\[\]]+|\[[0-9A-Fa-f:.]+\])(?::\d{0,5})?(?:[/?#]\S*)?",
    re.IGNORECASE,
)
# libyaml handled 10,000 nested levels here and crashed at 100,000; below this many marks
# (hence below this many characters) a document cannot nest deeply enough to matter.
_MAX_NESTING_MARKS = 5000
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
    # Changes on every write and rename, even one that puts size and mtime back.
    ctime_ns: int = 0


@dataclass(frozen=True, slots=True)
class ParsedSeed:
    """The outcome of reading one file: an article, or an error; warnings either way."""

    file: SeedFile
    article: Article | None
    error: str | None
    warnings: tuple[str, ...]
    # For a file that failed: whether its raw front matter still says `published: true` (and
    # nothing else for `published`). Only then may its last good version still be served.
    still_published: bool = False


def _inside(root: str, target: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


# Non-blocking, so that a FIFO swapped in after the scan cannot hang the reload in open();
# no controlling terminal from a device; not inherited by processes the server starts.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
)
_FILE_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
}


def _kind_of(path: str | Path) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "not a file"
    return _FILE_KINDS.get(stat.S_IFMT(mode), "not a file")


class NotARegularFile(SeedError):
    """The path no longer holds the regular file the scan saw: it vanished, or something
    else (a FIFO, a device, a socket) was put in its place."""


def _open_seed(path: str | Path) -> int:
    """A descriptor of the file, opened without blocking; SeedError saying why it cannot be."""
    try:
        return os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise NotARegularFile("file vanished before it could be read") from None
    except PermissionError:
        raise SeedError("permission denied") from None
    except OSError as error:
        if error.errno == errno.ENXIO:  # what opening a socket says
            raise NotARegularFile(f"is {_kind_of(path)}, not a regular file; not read") from None
        raise SeedError(f"cannot be read ({error.strerror})") from None


def read_seed_bytes(path: str | Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file and what `fstat` said of it; refuses anything that is not a
    regular file, and refuses a file over max_bytes unread."""
    descriptor = _open_seed(path)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a file")  # fstat, no race
            raise NotARegularFile(f"is {kind}, not a regular file; not read")
        size = info.st_size
        if size > max_bytes:
            raise SeedError(f"file is {size} bytes, over the limit of {max_bytes}")
        # Ask for the size fstat gave (plus one byte, to see growth): asking for the whole
        # limit would allocate a buffer of max_bytes for every file.
        data = os.read(descriptor, size + 1)
        while size < len(data) <= max_bytes:  # it grew while being read: read on, to the limit
            more = os.read(descriptor, max_bytes + 1 - len(data))
            if not more:
                break
            data += more
    except OSError as error:
        raise SeedError(f"cannot be read ({error.strerror})") from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise SeedError(f"file is over the limit of {max_bytes} bytes")
    return data, info


def decode_seed_text(data: bytes) -> str:
    """UTF-8 text (a byte order mark is dropped); SeedError naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SeedError(f"not valid UTF-8 (byte {error.start})") from None


def read_seed_text(path: str | Path, max_bytes: int) -> str:
    """Read a seed file as UTF-8 text, refusing it unread when it is over max_bytes."""
    return decode_seed_text(read_seed_bytes(path, max_bytes)[0])


def front_matter(text: str) -> str:
    """The YAML between the opening `---` line and the next; the whole text if there is none."""
    return front_matter_at(text)[0]


def front_matter_at(text: str) -> tuple[str, int]:
    """The front matter (as `front_matter`) and the number of its first line in the file."""
    first_line_end = text.find("\n")
    first_line = text if first_line_end < 0 else text[:first_line_end]
    if first_line.rstrip() != "---":
        return text, 1
    position = first_line_end
    while position >= 0:  # str.find is many times faster than a multiline regex here
        fence = text.find("\n---", position)
        if fence < 0:
            break
        line_end = text.find("\n", fence + 4)
        if not text[fence + 4 : line_end if line_end >= 0 else len(text)].strip(" \t\r"):
            return text[first_line_end + 1 : fence + 1], 2
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


# A `published:` line (the key maybe quoted, maybe indented), and a value that says true.
_PUBLISHED_LINE = re.compile(r"""[ \t]*(["']?)published\1[ \t]*:(.*)""")
_TRUE_VALUE = re.compile(r"(?:true|True|TRUE)(?:[ \t]+#.*)?")


def still_says_published(data: bytes) -> bool:
    """Whether a file's raw front matter has a `published: true` line and no `published:`
    line that says anything else; read leniently (any encoding, broken YAML, no closing
    fence), because it is asked only of files that failed to parse."""
    lines = data.decode("utf-8", "replace").removeprefix("\ufeff").splitlines()
    if lines and lines[0].rstrip() == "---":
        closing = next((n for n, line in enumerate(lines) if n and line.rstrip() == "---"), None)
        lines = lines[1:closing]
    values = [match[2].strip() for line in lines if (match := _PUBLISHED_LINE.fullmatch(line))]
    return bool(values) and all(_TRUE_VALUE.fullmatch(value) for value in values)


def load_yaml_mapping(source: str, first_line: int = 1) -> dict[str, Any]:
    """Parse YAML safely into a mapping; raises SeedError with the line of the problem,
    counted in the file whose line `first_line` the source starts on."""
    # libyaml composes nested nodes by C recursion and crashes the process on very deep
    # nesting; a document that could nest deeply goes to the pure-Python loader, which
    # stops at Python's recursion limit instead.
    deep = len(source) > _MAX_NESTING_MARKS and _nesting_marks(source) > _MAX_NESTING_MARKS
    loader = PurePythonLoader if deep else YamlLoader
    try:
        data = yaml.load(source, Loader=loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + first_line}" if mark is not None else ""
        problem = error.problem or "syntax error"
        if mark is not None and source[mark.index : mark.index + 1] == "\t":
            problem += " (a tab: YAML indents with spaces only)"
        if isinstance(error, DuplicateKeyError) and error.context_mark is not None:
            problem += f" (first at line {error.context_mark.line + first_line})"
        raise SeedError(f"invalid YAML{where}: {problem}") from None
    except yaml.reader.ReaderError as error:
        # Its position counts characters or bytes depending on the loader: the refused
        # character's first occurrence is where it was refused either way.
        code = error.character if isinstance(error.character, int) else 0
        found = source.find(chr(code)) if code else -1
        where = f" at line {source.count(chr(10), 0, found) + first_line}" if found >= 0 else ""
        raise SeedError(f"invalid YAML{where}: {error.reason} (U+{code:04X})") from None
    except yaml.YAMLError as error:
        raise SeedError(f"invalid YAML: {_one_line(error)}") from None
    except RecursionError:
        raise SeedError("YAML is nested too deeply") from None
    except Exception as error:  # anything else the loader lets out is still this file's
        raise SeedError(f"invalid YAML: {type(error).__name__}: {_one_line(error)}") from None
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
    """Remove characters that XML cannot carry, bidirectional controls and surrounding
    whitespace."""
    if value.isascii() and value.isprintable():  # the common case, checked at C speed
        return value.strip()
    return _UNSAFE_CHARACTERS.sub("", value).strip()


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


# A score beyond this is no score: a 0x-written integer of thousands of digits would even
# fail to print.
_LARGEST_NUMBER = 2**63


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or not -_LARGEST_NUMBER < value < _LARGEST_NUMBER:  # NaN, inf, huge
        return None
    return value


def _short_text(value: Any) -> str | None:
    """Text from a string or a plain number; None for anything else."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # an integer of more digits than Python will print
            return None
    return None


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


def _unsafe_key_note(what: str, natural: str, key: str) -> str | None:
    """The warning for a key that `safe_key` had to change, or None."""
    if key == natural:
        return None
    why = "ends like a feed" if natural.endswith(_FEED_ENDINGS) else "is too long for a file name"
    return f"{what} key {_short_repr(natural)} {why}; its key is {key!r}"


@lru_cache(maxsize=65536)
def _topic_and_note(name: str) -> tuple[Topic | None, str | None]:
    slug = name_slug(name)
    if not slug:
        return None, None
    key = safe_key(slug)
    return Topic(key, clean_name(name)), _unsafe_key_note("topic", slug, key)


def topic_for(name: str) -> Topic | None:
    """The topic of a name; names with the same slug (see `name_slug`) share a key."""
    return _topic_and_note(name)[0]


@lru_cache(maxsize=65536)
def _provider_and_note(name: str, domain: str) -> tuple[Provider | None, str | None]:
    host = domain.strip().lower().rstrip(".").removeprefix("www.")
    if host and not _DOMAIN.fullmatch(host):
        host = name_slug(host)
    natural = host or name_slug(name)
    if not natural:
        return None, None
    key = safe_key(natural)
    shown = clean_name(name) or host
    return Provider(key, shown, host), _unsafe_key_note("provider", natural, key)


def provider_for(name: str, domain: str) -> Provider | None:
    """The provider of a name and domain, keyed by the bare lowercase domain or the name's slug."""
    return _provider_and_note(name, domain)[0]


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
        provider, note = _provider_and_note(name, domain)
        if provider is None:
            self.warnings.append("'provider' has neither a name nor a domain; dropped")
        elif note is not None:
            self.warnings.append(note)
        return provider

    def topics(self) -> tuple[Topic, ...]:
        topics: dict[str, Topic] = {}
        for position, value in enumerate(self.optional_list("topics"), 1):
            name = _short_text(value)
            topic, note = _topic_and_note(name) if name else (None, None)
            if topic is None:
                self.warnings.append(f"topic {position} is not a usable name; dropped")
                continue
            if note is not None:
                self.warnings.append(note)
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
            related.append(Related(title, url, provider_name))
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
            image_text=pack_images(self.images(self.optional_list("images"), "image")),
            related_text=pack_related(self.related()),
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
            return body_html(_UNSAFE_CHARACTERS.sub("", self.body), url)
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
    """Read one seed file into an article or an error; never raises."""
    data = b""
    try:
        data, info = read_seed_bytes(os.path.join(root, seed.path), max_bytes)
        signature = (info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)
        if signature != seed[1:]:  # size, mtime, inode and ctime as the scan saw them
            # Changed since the scan: keep what was read, for the next reload to compare.
            seed = _new_tuple(SeedFile, (seed.path, *signature))
        text = decode_seed_text(data)
        block, first_line = front_matter_at(text)
        article, warnings = article_from_mapping(
            load_yaml_mapping(block, first_line), markdown_body(text, block)
        )
    except NotARegularFile as error:
        # The scan's signature no longer describes this path: look again on the next reload
        # even if the file the scan saw comes back unchanged.
        return ParsedSeed(seed._replace(size=-1), None, str(error), ())
    except SeedError as error:
        return ParsedSeed(seed, None, str(error), (), still_says_published(data))
    except Exception as error:  # a value our conversion did not foresee: still this file's
        reason = f"cannot be used ({type(error).__name__}: {_one_line(error)})"
        return ParsedSeed(seed, None, reason, (), still_says_published(data))
    return ParsedSeed(seed, article, None, warnings)
