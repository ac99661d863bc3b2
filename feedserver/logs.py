"""How feedserver logs: its own lines on stderr, at INFO unless logging is set up already or
the operator chose a level, and the chatter of libraries held back unless asked for."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
# Libraries whose INFO lines tell an operator nothing: APScheduler logs every job it adds and
# every run of it ("Adding job tentatively", "Running job", "executed successfully").
QUIET_LIBRARIES = ("apscheduler",)
# The libraries whose level this module set (any other level is the operator's own choice).
_quietened: set[str] = set()


def configure_logging(level: int | str | None = None) -> None:
    """Log to stderr unless logging is set up already; at `level` when given (a name such as
    "debug", or a number). QUIET_LIBRARIES log warnings and worse only, unless the root
    logger is at DEBUG or the operator's logging config gave them a level of their own."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format=FORMAT)
    if level is not None:
        root.setLevel(level.upper() if isinstance(level, str) else level)
    debugging = root.getEffectiveLevel() <= logging.DEBUG
    for name in QUIET_LIBRARIES:
        library = logging.getLogger(name)
        if library.level != logging.NOTSET and name not in _quietened:
            continue
        library.setLevel(logging.NOTSET if debugging else logging.WARNING)
        _quietened.add(name)
