"""Every setting, declared once: a field of `Settings` with its type, its default (as the
config file writes it), its parser (setting_values.py) and its help. `SETTINGS` lists them,
in order, for the loader (config.py), the bundled config file and the README's table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from .networks import Network
from .setting_values import (
    any_text,
    base_url,
    boolean,
    hub_url,
    image_url,
    integer,
    language,
    networks,
    nonempty_text,
    optional_path,
    path,
)


@dataclass(frozen=True, slots=True)
class Setting:
    """One configurable value: its default, how to read it, and what it means."""

    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str


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
        path,
        "Directory of seed documents, read recursively; relative to the working directory.",
    )
    reload_interval: int = _setting(
        60,
        integer(1, 86400),
        "Seconds between reloads of the seeds directory while serving (1 to 86400).",
    )
    base_url: str = _setting(
        "",
        base_url,
        "Absolute URL the site is served at, e.g. https://feeds.example.com. Empty: each "
        "request's own host is used (and responses are cached per host).",
    )
    site_title: str = _setting(
        "feedserver",
        nonempty_text,
        "Title of the site and its feeds.",
    )
    site_description: str = _setting(
        "News feeds by topic and provider",
        nonempty_text,
        "Description of the site, used by the all-articles feed.",
    )
    language: str = _setting(
        "en",
        language,
        "Language tag of the feeds' content.",
    )
    feed_limit: int = _setting(
        50,
        integer(1, 10000),
        "Entries in a feed when the client asks for no `limit`.",
    )
    max_feed_limit: int = _setting(
        500,
        integer(1, 10000),
        "Largest `limit` a client may ask for.",
    )
    page_size: int = _setting(
        20,
        integer(1, 500),
        "Articles on one page of the HTML pages (home, topics, providers, search), which show "
        "older ones with `?page=`.",
    )
    websub_hub: str = _setting(
        "",
        hub_url,
        "WebSub hub (https://www.w3.org/TR/websub/) that every feed advertises and that is "
        "told when a feed changes, e.g. https://hub.example.com/. Empty: no hub. Needs "
        "base_url.",
    )
    feed_image: str = _setting(
        "",
        image_url,
        "Absolute URL of a square PNG, GIF or JPEG image (at most 144 pixels wide suits RSS "
        "readers) that every feed shows as its icon and logo: RSS <image>, Atom <icon> and "
        "<logo>, JSON Feed icon and favicon. Empty: the bundled image the server serves at "
        "/static/feed-icon.png.",
    )
    max_file_bytes: int = _setting(
        1024 * 1024,
        integer(1024),
        "Seed files larger than this many bytes are refused unread (1 MiB).",
    )
    health_details_from: tuple[Network, ...] = _setting(
        ("127.0.0.0/8", "::1"),
        networks,
        "Addresses or networks (a list, or comma-separated in FEEDSERVER_HEALTH_DETAILS_FROM) "
        "that may see the file names and reasons in /healthz, /stats, /stats.json and "
        "/metrics; everyone else gets counts only. The address is the connection's, as "
        "gunicorn gives it (behind nginx: nginx's; X-Forwarded-For is never read). An empty "
        "list shows details to nobody.",
    )
    trusted_proxies: tuple[Network, ...] = _setting(
        ("127.0.0.0/8", "::1"),
        networks,
        "Proxies (addresses or networks, a list or comma-separated) whose X-Real-IP header "
        "names the client for polite polling and the reader counts: the bundled nginx, on "
        "this machine, sends it. Anyone else's header is ignored, and /healthz, /stats and "
        "/metrics never read it. An empty list: always the connection's address.",
    )
    stats_db: str = _setting(
        "auto",
        optional_path,
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
        integer(1, 36500),
        "Days of daily figures kept in stats_db (1 to 36500).",
    )
    stats_flush_seconds: int = _setting(
        5,
        integer(1, 300),
        "Seconds between each worker's batched writes to stats_db (1 to 300).",
    )
    stats_public: bool = _setting(
        False,
        boolean,
        "Show /stats and /stats.json to every address, not only health_details_from.",
    )
    metrics_public: bool = _setting(
        False,
        boolean,
        "Show /metrics (Prometheus) to every address, not only health_details_from.",
    )
    polite_polling: bool = _setting(
        True,
        boolean,
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
        any_text,
        "Folder where the parsed seeds are kept between runs, so that a restart (or a new "
        "worker) with unchanged seeds parses nothing and workers started together parse once. "
        "`auto`: a folder of this user in the system's temporary folder. Empty: no snapshot, "
        "every start parses every file. The folder must not be writable by other users.",
    )
    watch_seeds: bool = _setting(
        True,
        boolean,
        "Reload only the folders that inotify (Linux) reports changed since the last reload, "
        "so a reload with nothing changed costs nearly nothing whatever the number of files; "
        "every tenth reload, and after an overflow of inotify's queue, still stats every "
        "file. false: every reload stats every file (use it for seeds on a network file "
        "system).",
    )
    render_cache_bytes: int = _setting(
        64_000_000,
        integer(0),
        "Bytes of rendered responses each server process keeps in memory, counting their gzip "
        "copies (64 MB); the least recently used go first, and a response larger than this is "
        "served but not kept. 0 keeps none (every request renders).",
    )


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(item.name, item.metadata["default"], item.metadata["parse"], item.metadata["help"])
    for item in fields(Settings)
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}
