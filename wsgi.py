"""The WSGI entry point: `gunicorn wsgi:app` serves the feeds and reloads them on a schedule."""

import sys

from gunicorn.arbiter import Arbiter

from feedserver import create_app
from feedserver.config import StartupError

try:
    app = create_app(reload_in_background=True)
except StartupError as error:
    # One clear line instead of a traceback, and gunicorn's boot-error code: its master then
    # stops the whole server instead of starting this worker again and again.
    print(f"feedserver: {error}", file=sys.stderr, flush=True)
    sys.exit(Arbiter.WORKER_BOOT_ERROR)
