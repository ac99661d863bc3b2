"""The WSGI entry point: `gunicorn wsgi:app` serves the feeds and reloads them on a schedule."""

import sys

from feedserver import create_app
from feedserver.config import ConfigError

try:
    app = create_app(reload_in_background=True)
except ConfigError as error:
    # One clear line instead of a traceback when a setting is bad.
    sys.exit(f"feedserver: {error}")
