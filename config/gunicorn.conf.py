"""gunicorn settings for feedserver: `gunicorn -c config/gunicorn.conf.py wsgi:app`.

Every gunicorn option can be set here or on the command line; this file adds the hook that
starts each worker's reload job as soon as the worker is up, rather than with its first
request, so an idle worker's catalog stays current too."""

bind = "127.0.0.1:8000"
workers = 2


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Start the worker's reload job (and WebSub publishing, when configured)."""
    from feedserver.scheduler import start_in_worker

    start_in_worker(worker.wsgi)
