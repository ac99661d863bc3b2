"""Files of this server's own in a folder others may share (the stats database in /var/tmp, a
shared `var/`): a file another user made in advance, or a symlink put where the file will be,
would let them read or steer what the server writes, so it is refused before it is opened,
as snapshot.py does for its files. The path and its SQLite companions (`-wal`, `-shm`,
`-journal`) are checked each time the database is opened."""

from __future__ import annotations

import os
import stat

COMPANIONS = ("", "-wal", "-shm", "-journal")


def foreign_file(path: str) -> str | None:
    """Why `path` (or one of its SQLite companions) is not a file of this user's own, or None
    when each is a regular file of this user or does not exist yet."""
    for suffix in COMPANIONS:
        name = path + suffix
        try:
            info = os.lstat(name)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            return f"{name} is a symbolic link"
        if not stat.S_ISREG(info.st_mode):
            return f"{name} is not a regular file"
        if info.st_uid != os.geteuid():
            return f"{name} belongs to another user (uid {info.st_uid})"
    return None


def create_own_file(path: str) -> None:
    """Create `path` for this user alone (mode 0600) unless it exists; never through a
    symlink. Raises OSError when it cannot."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return
    os.close(handle)
