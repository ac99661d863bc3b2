"""What belongs to one running server rather than to the folder it was started in: the
address it listens on, which names its default stats database, and its polling table.

The gunicorn master records both before any worker forks and before a --preload app loads
(`feedserver serve`, and config/gunicorn.conf.py as gunicorn reads it), so its workers
inherit them: the table is anonymous shared memory, seen by every worker of this server and
by no other server. Two servers started from one folder therefore never share limits or
figures, unless an operator names one stats_db for both on purpose.

Without the master's word (plain `gunicorn wsgi:app` without the config file, tests,
`feedserver build`), each app makes a table of its own, which its processes share only when
the app is loaded before they fork (--preload), and the default stats database is
var/stats.sqlite3."""

from __future__ import annotations

import re
from pathlib import Path

from .limiter import SharedTable

AUTO = "auto"
STATS_FOLDER = Path("var")
UNNAMED_STATS_DB = STATS_FOLDER / "stats.sqlite3"
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")

_address: str | None = None
_table: SharedTable | None = None


def belong_to(address: str) -> None:
    """In the master, before workers fork: the address served, and the shared table."""
    global _address, _table
    _address = address
    if _table is None:  # a reload (HUP) keeps the table, so the limits hold across it
        _table = SharedTable()


def forget() -> None:
    """Back to no master's word (for tests)."""
    global _address, _table
    _address, _table = None, None


def polling_table() -> SharedTable:
    """The master's table, else one of the caller's own (shared with later forks only)."""
    return _table if _table is not None else SharedTable()


def stats_db_path(setting: str) -> str:
    """The stats database a setting names: `auto` is this server's own file
    (var/stats-ADDRESS-PORT.sqlite3), any other value is used as it is."""
    if setting != AUTO:
        return setting
    if _address is None:
        return str(UNNAMED_STATS_DB)
    return str(STATS_FOLDER / f"stats-{server_name(_address)}.sqlite3")


def server_name(address: str) -> str:
    """A file-name part naming the server that listens on an address:
    127.0.0.1:8000 -> 127.0.0.1-8000, [::1]:8000 -> 1-8000."""
    return _UNSAFE.sub("-", address.removeprefix("tcp://")).strip("-")


def control_socket(address: str, default: str) -> str:
    """This server's gunicorn control socket: gunicorn's default folder, but a file named
    after the address, so that a second server of the same user does not take over (and,
    stopping, remove) the first one's socket."""
    return str(Path(default).parent / f"gunicorn-{server_name(address)}.ctl")
