"""The settings table: every setting's name, default, type and help, loaded and validated once
into a frozen, typed `Settings` that the app is built with."""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from flask import Flask, current_app

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


def _networks(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
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


SETTINGS: tuple[Setting, ...] = (
    Setting("seeds_dir", "seeds", _path, "Directory of seed documents, read recursively."),
    Setting(
        "reload_interval", 60, _integer(1, 86400), "Seconds between reloads of the seeds directory."
    ),
    Setting(
        "base_url",
        "",
        _base_url,
        "Absolute URL the site is served at; empty means use the request's host.",
    ),
    Setting("site_title", "feedserver", _nonempty_text, "Title of the site and its feeds."),
    Setting(
        "site_description",
        "News feeds by topic and provider",
        _nonempty_text,
        "Description of the site, used by the all-articles feed.",
    ),
    Setting("language", "en", _language, "Language tag of the feeds' content."),
    Setting("feed_limit", 50, _integer(1, 10000), "Entries in a feed when no limit is asked for."),
    Setting(
        "max_feed_limit", 500, _integer(1, 10000), "Largest `limit` query value a client may ask."
    ),
    Setting("page_size", 20, _integer(1, 500), "Articles on one page of an HTML page's paging."),
    Setting(
        "websub_hub",
        "",
        _hub_url,
        "WebSub hub that feeds advertise and that is told of changes; empty means none.",
    ),
    Setting(
        "feed_image",
        "",
        _image_url,
        "URL of a square PNG, GIF or JPEG that feeds show as their icon and logo; "
        "empty means the bundled image.",
    ),
    Setting(
        "max_file_bytes",
        1024 * 1024,
        _integer(1024),
        "Seed files larger than this many bytes are refused unread.",
    ),
    Setting(
        "health_details_from",
        ["127.0.0.0/8", "::1"],
        _networks,
        "Addresses (or networks) that may see /healthz details, /stats and /metrics.",
    ),
    Setting(
        "trusted_proxies",
        ["127.0.0.0/8", "::1"],
        _networks,
        "Proxies (addresses or networks) whose X-Real-IP header names the client for polite "
        "polling and the reader counts (the bundled nginx sends it); empty: always the peer.",
    ),
    Setting(
        "stats_db",
        "auto",
        _optional_path,
        "SQLite file of subscriber and poll counts, shared by the workers; auto: this "
        "server's own, var/stats-ADDRESS-PORT.sqlite3; empty: not counted.",
    ),
    Setting(
        "stats_retention_days", 400, _integer(1, 36500), "Days of daily figures kept in stats_db."
    ),
    Setting(
        "stats_flush_seconds",
        5,
        _integer(1, 300),
        "Seconds between each worker's batched writes to stats_db.",
    ),
    Setting("stats_public", False, _boolean, "Show /stats and /stats.json to every address."),
    Setting("metrics_public", False, _boolean, "Show /metrics to every address."),
    Setting(
        "polite_polling",
        True,
        _boolean,
        "Answer 429 to a client that keeps fetching one feed URL unconditionally faster "
        "than reload_interval, past a burst of 5.",
    ),
    Setting(
        "cache_dir",
        "auto",
        _text,
        "Folder for the snapshot of parsed seeds that lets a restart skip unchanged files; "
        "auto: a per-user folder in the system's temporary folder; empty: no snapshot.",
    ),
    Setting(
        "watch_seeds",
        True,
        _boolean,
        "Reload only the folders inotify reports changed (Linux), with a full scan every "
        "tenth reload; false: every reload stats every file.",
    ),
    Setting(
        "render_cache_bytes",
        64_000_000,
        _integer(0),
        "Bytes of rendered responses (with their gzip copies) each process keeps; 0 keeps none.",
    ),
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting's value, parsed and checked: one attribute per row of SETTINGS, in the
    same order (the table keeps the defaults and help; tests/test_config.py holds the two
    together)."""

    seeds_dir: str
    reload_interval: int
    base_url: str
    site_title: str
    site_description: str
    language: str
    feed_limit: int
    max_feed_limit: int
    page_size: int
    websub_hub: str
    feed_image: str
    max_file_bytes: int
    health_details_from: tuple[Network, ...]
    trusted_proxies: tuple[Network, ...]
    stats_db: str
    stats_retention_days: int
    stats_flush_seconds: int
    stats_public: bool
    metrics_public: bool
    polite_polling: bool
    cache_dir: str
    watch_seeds: bool
    render_cache_bytes: int


SETTINGS_EXTENSION = "feedserver.settings"


def app_settings(app: Flask) -> Settings:
    """The settings an app was built with (create_app keeps them in its extensions)."""
    settings: Settings = app.extensions[SETTINGS_EXTENSION]
    return settings


def current_settings() -> Settings:
    """The settings of the app handling the current request."""
    return app_settings(current_app)


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
