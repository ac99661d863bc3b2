"""The settings table: every setting's name, default, type and help, loaded and validated once
into a frozen, typed `Settings` that the app is built with."""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import os
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from flask import Flask, current_app

from .networks import Network

ENV_PREFIX = "FEEDSERVER_"
CONFIG_ENV = "FEEDSERVER_CONFIG"
DEFAULT_CONFIG_FILE = Path("config") / "feedserver.yaml"

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """The server cannot start; the message is one line naming the setting or path."""


class ConfigError(StartupError):
    """A setting has a bad value; the message is one line naming the key."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One configurable value: its default, how to read it, and what it means."""

    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str


def _integer(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        try:
            number = int(str(value).strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be an integer, got {value!r}") from None
        if isinstance(value, float) and value != number:
            raise ValueError(f"must be an integer, got {value!r}")
        if number < minimum or (maximum is not None and number > maximum):
            upper = f" and {maximum}" if maximum is not None else ""
            bound = f"between {minimum}{upper}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"must be {bound}, got {number}")
        return number

    return parse


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"must be text, got {type(value).__name__}")
    return str(value).strip()


def _nonempty_text(value: Any) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _base_url(value: Any) -> str:
    text = _text(value)
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"must be an absolute http(s) URL such as https://feeds.example.com, got {text!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    return text.rstrip("/")


def _hub_url(value: Any) -> str:
    text = _text(value)
    if text and not _base_url(text):
        raise ValueError("must be an absolute http(s) URL")
    return text


# Image types RSS <image> may name (the W3C validator warns on any other file extension).
IMAGE_EXTENSIONS = (".png", ".gif", ".jpg", ".jpeg")


def _image_url(value: Any) -> str:
    text = _text(value)
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an absolute http(s) URL of an image, got {text!r}")
    if not parts.path.lower().endswith(IMAGE_EXTENSIONS):
        raise ValueError(f"must name a PNG, GIF or JPEG file ({', '.join(IMAGE_EXTENSIONS)})")
    return text


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _networks(value: Any) -> tuple[Network, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("must be a list of addresses or networks such as 127.0.0.0/8")
    networks = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an address or network") from None
    return tuple(networks)


def _optional_path(value: Any) -> str:
    return _text(value)


def _path(value: Any) -> str:
    return _nonempty_text(value)


def _language(value: Any) -> str:
    text = _nonempty_text(value)
    if not all(part.isalnum() and len(part) <= 8 for part in text.split("-")):
        raise ValueError(f"must be a language tag such as en or en-US, got {text!r}")
    return text


def _setting(default: Any, parse: Callable[[Any], Any], help: str) -> Any:
    """A setting, declared once as a field of Settings: its default as the config file writes
    it, the parser that checks and converts a value from any source, and its help (the
    comment above it in the config file, see example_config)."""
    return field(metadata={"default": default, "parse": parse, "help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting's value, parsed and checked. Each field is the one declaration of its
    setting: name, type, default, parser and help (SETTINGS lists them)."""

    seeds_dir: str = _setting(
        "seeds",
        _path,
        "Directory of seed documents, read recursively; relative to the working directory.",
    )
    reload_interval: int = _setting(
        60,
        _integer(1, 86400),
        "Seconds between reloads of the seeds directory while serving (1 to 86400).",
    )
    base_url: str = _setting(
        "",
        _base_url,
        "Absolute URL the site is served at, e.g. https://feeds.example.com. Empty: each "
        "request's own host is used (and responses are cached per host).",
    )
    site_title: str = _setting(
        "feedserver",
        _nonempty_text,
        "Title of the site and its feeds.",
    )
    site_description: str = _setting(
        "News feeds by topic and provider",
        _nonempty_text,
        "Description of the site, used by the all-articles feed.",
    )
    language: str = _setting(
        "en",
        _language,
        "Language tag of the feeds' content.",
    )
    feed_limit: int = _setting(
        50,
        _integer(1, 10000),
        "Entries in a feed when the client asks for no `limit`.",
    )
    max_feed_limit: int = _setting(
        500,
        _integer(1, 10000),
        "Largest `limit` a client may ask for.",
    )
    page_size: int = _setting(
        20,
        _integer(1, 500),
        "Articles on one page of the HTML pages (home, topics, providers, search), which show "
        "older ones with `?page=`.",
    )
    websub_hub: str = _setting(
        "",
        _hub_url,
        "WebSub hub (https://www.w3.org/TR/websub/) that every feed advertises and that is "
        "told when a feed changes, e.g. https://hub.example.com/. Empty: no hub. Needs "
        "base_url.",
    )
    feed_image: str = _setting(
        "",
        _image_url,
        "Absolute URL of a square PNG, GIF or JPEG image (at most 144 pixels wide suits RSS "
        "readers) that every feed shows as its icon and logo: RSS <image>, Atom <icon> and "
        "<logo>, JSON Feed icon and favicon. Empty: the bundled image the server serves at "
        "/static/feed-icon.png.",
    )
    max_file_bytes: int = _setting(
        1024 * 1024,
        _integer(1024),
        "Seed files larger than this many bytes are refused unread (1 MiB).",
    )
    health_details_from: tuple[Network, ...] = _setting(
        ("127.0.0.0/8", "::1"),
        _networks,
        "Addresses or networks (a list, or comma-separated in FEEDSERVER_HEALTH_DETAILS_FROM) "
        "that may see the file names and reasons in /healthz, /stats, /stats.json and "
        "/metrics; everyone else gets counts only. The address is the connection's, as "
        "gunicorn gives it (behind nginx: nginx's; X-Forwarded-For is never read). An empty "
        "list shows details to nobody.",
    )
    trusted_proxies: tuple[Network, ...] = _setting(
        ("127.0.0.0/8", "::1"),
        _networks,
        "Proxies (addresses or networks, a list or comma-separated) whose X-Real-IP header "
        "names the client for polite polling and the reader counts: the bundled nginx, on "
        "this machine, sends it. Anyone else's header is ignored, and /healthz, /stats and "
        "/metrics never read it. An empty list: always the connection's address.",
    )
    stats_db: str = _setting(
        "auto",
        _optional_path,
        "SQLite file where every worker counts subscribers and polls per feed and day "
        "(relative to the working directory). auto: this server's own file, named after the "
        "address it listens on (var/stats-127.0.0.1-8000.sqlite3), so two servers started "
        "from one folder keep their figures apart and a restart on the same address finds its "
        "own; it needs the address from `feedserver serve` or config/gunicorn.conf.py (under "
        "plain `gunicorn wsgi:app`, without that file: var/stats.sqlite3). Any other path is "
        "used as it is: servers given the same path share one set of figures, on purpose. "
        "Empty: nothing is counted and /stats answers 404.",
    )
    stats_retention_days: int = _setting(
        400,
        _integer(1, 36500),
        "Days of daily figures kept in stats_db (1 to 36500).",
    )
    stats_flush_seconds: int = _setting(
        5,
        _integer(1, 300),
        "Seconds between each worker's batched writes to stats_db (1 to 300).",
    )
    stats_public: bool = _setting(
        False,
        _boolean,
        "Show /stats and /stats.json to every address, not only health_details_from.",
    )
    metrics_public: bool = _setting(
        False,
        _boolean,
        "Show /metrics (Prometheus) to every address, not only health_details_from.",
    )
    polite_polling: bool = _setting(
        True,
        _boolean,
        "Answer 429 Too Many Requests to a client (address and User-Agent) that keeps "
        "fetching one feed URL without If-None-Match or If-Modified-Since faster than "
        "reload_interval. Each feed URL with its query (every format, page, limit, search and "
        "selection; parameters the server ignores aside) has its own allowance per client: a "
        "burst of 5 fetches in a row, then one more per reload_interval. Retry-After is at most "
        "reload_interval. The feeds' freshness hint (ttl, max-age) is advice only, never a "
        "limit. Conditional requests, aggregators that report subscribers and browsers "
        "opening a page are never limited. The allowances live in the server's memory, shared "
        "by its workers when `feedserver serve` or config/gunicorn.conf.py starts it (or the "
        "app is preloaded); no other server sees them.",
    )
    cache_dir: str = _setting(
        "auto",
        _text,
        "Folder where the parsed seeds are kept between runs, so that a restart (or a new "
        "worker) with unchanged seeds parses nothing and workers started together parse once. "
        "`auto`: a folder of this user in the system's temporary folder. Empty: no snapshot, "
        "every start parses every file. The folder must not be writable by other users.",
    )
    watch_seeds: bool = _setting(
        True,
        _boolean,
        "Reload only the folders that inotify (Linux) reports changed since the last reload, "
        "so a reload with nothing changed costs nearly nothing whatever the number of files; "
        "every tenth reload, and after an overflow of inotify's queue, still stats every "
        "file. false: every reload stats every file (use it for seeds on a network file "
        "system).",
    )
    render_cache_bytes: int = _setting(
        64_000_000,
        _integer(0),
        "Bytes of rendered responses each server process keeps in memory, counting their gzip "
        "copies (64 MB); the least recently used go first, and a response larger than this is "
        "served but not kept. 0 keeps none (every request renders).",
    )


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(item.name, item.metadata["default"], item.metadata["parse"], item.metadata["help"])
    for item in fields(Settings)
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


SETTINGS_EXTENSION = "feedserver.settings"


def app_settings(app: Flask) -> Settings:
    """The settings an app was built with (create_app keeps them in its extensions)."""
    settings: Settings = app.extensions[SETTINGS_EXTENSION]
    return settings


def current_settings() -> Settings:
    """The settings of the app handling the current request."""
    return app_settings(current_app)


EXAMPLE_HEADER = """\
# feedserver settings. Every key is optional; the value shown is the default.
# FEEDSERVER_CONFIG=path/to/other.yaml reads another file instead of this one, and
# FEEDSERVER_<KEY> (FEEDSERVER_SEEDS_DIR, FEEDSERVER_BASE_URL, ...) overrides one key; any
# other FEEDSERVER_* variable is ignored with a warning naming the closest setting.
"""


def example_config() -> str:
    """The bundled config/feedserver.yaml: every setting at its default, its help above it
    (tests/test_config.py keeps the file equal to this)."""
    parts = [EXAMPLE_HEADER]
    for setting in SETTINGS:
        comment = textwrap.fill(setting.help, 90, initial_indent="# ", subsequent_indent="# ")
        parts.append(f"{comment}\n{setting.name}: {_yaml_value(setting.default)}\n")
    return "\n".join(parts)


def _yaml_value(value: Any) -> str:
    """A default as the config file writes it: text unquoted unless YAML would read it as
    something else, lists in flow style."""
    if isinstance(value, tuple | list):
        return json.dumps(list(value))
    if isinstance(value, str) and (not value or yaml.safe_load(value) != value):
        return json.dumps(value)
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError(f"config file {path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must be a mapping of setting: value")
    unknown = sorted(str(key) for key in data if key not in SETTINGS_BY_NAME)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r}")
    return data


def _config_file(environ: Mapping[str, str], named: str | Path | None) -> Path | None:
    """The config file to read: the one named by the caller (the command line's --config),
    else by FEEDSERVER_CONFIG, else config/feedserver.yaml when there is one."""
    if named:
        return Path(named)
    variable = environ.get(CONFIG_ENV, "").strip()
    if variable:
        return Path(variable)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


# Unknown variables already warned about in this process (and, after a fork, its workers).
_warned_variables: set[str] = set()


def known_variables() -> list[str]:
    """Every FEEDSERVER_* environment variable that means something."""
    return sorted({ENV_PREFIX + setting.name.upper() for setting in SETTINGS} | {CONFIG_ENV})


def warn_unknown_variables(environ: Mapping[str, str]) -> None:
    """Log, once per variable, a FEEDSERVER_* variable that is no setting (a typo is not
    silently ignored), naming the closest one."""
    known = known_variables()
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name in _warned_variables:
            continue
        _warned_variables.add(name)
        closest = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0)[0]
        logger.warning(
            "feedserver: environment variable %s is not a setting and is ignored; did you mean %s?",
            name,
            closest,
        )


def check_seeds_dir(seeds_dir: str | Path) -> None:
    """Stop start-up with one line naming the path when the seeds directory cannot be listed.

    (A directory that disappears while serving is another matter: /healthz says degraded.)"""
    path = Path(seeds_dir)
    shown = str(path) if path.is_absolute() else f"{path} ({path.absolute()})"
    try:
        with os.scandir(path):
            pass
    except FileNotFoundError:
        raise StartupError(f"seeds_dir {shown}: no such directory") from None
    except NotADirectoryError:
        raise StartupError(f"seeds_dir {shown}: not a directory") from None
    except OSError as error:
        raise StartupError(
            f"seeds_dir {shown}: cannot be read ({error.strerror or error})"
        ) from None


def _raw_values(
    overrides: Mapping[str, Any],
    environ: Mapping[str, str],
    config_file: str | Path | None,
    source: str,
) -> dict[str, tuple[Any, str]]:
    """Each setting's unparsed value and where it came from; later sources win."""
    raw: dict[str, tuple[Any, str]] = {s.name: (s.default, "default") for s in SETTINGS}
    path = _config_file(environ, config_file)
    if path is not None:
        for key, value in _read_config_file(path).items():
            raw[key] = (value, f"config file {path}")
    for setting in SETTINGS:
        variable = ENV_PREFIX + setting.name.upper()
        if variable in environ:
            raw[setting.name] = (environ[variable], variable)
    for key, value in overrides.items():
        if key not in SETTINGS_BY_NAME:
            raise ConfigError(f"config: unknown setting {key!r}")
        raw[key] = (value, source)
    return raw


def _parsed(raw: Mapping[str, tuple[Any, str]]) -> Settings:
    values: dict[str, Any] = {}
    for name, (value, origin) in raw.items():
        try:
            values[name] = SETTINGS_BY_NAME[name].parse(value)
        except ValueError as error:
            raise ConfigError(f"config: {name} ({origin}) {error}") from None
    return Settings(**values)


def _check_together(settings: Settings) -> None:
    """Refuse settings that are each valid but do not go together."""
    if settings.feed_limit > settings.max_feed_limit:
        raise ConfigError(
            f"config: feed_limit ({settings.feed_limit}) must not exceed "
            f"max_feed_limit ({settings.max_feed_limit})"
        )
    if settings.websub_hub and not settings.base_url:
        raise ConfigError("config: websub_hub needs base_url, so the hub is told public feed URLs")


def load_config(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    config_file: str | Path | None = None,
    source: str = "overrides",
) -> Settings:
    """Merge defaults, the config file, FEEDSERVER_* variables and overrides; validate each.

    `config_file` names the file to read instead of FEEDSERVER_CONFIG's; `source` is what an
    error about an override calls its origin (the command line names its options)."""
    environ = os.environ if environ is None else environ
    warn_unknown_variables(environ)
    settings = _parsed(_raw_values(overrides or {}, environ, config_file, source))
    _check_together(settings)
    return settings
