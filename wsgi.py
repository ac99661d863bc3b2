"""The WSGI entry point: `gunicorn wsgi:app` serves the feeds and reloads them on a schedule."""

from feedserver.gunicorn_hooks import serving_app

app = serving_app()
