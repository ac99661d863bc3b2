"""gunicorn settings for feedserver: `gunicorn -c config/gunicorn.conf.py wsgi:app`.

Every gunicorn option can be set here or on the command line. The worker model and its time
limits are the ones `feedserver serve` uses (see feedserver/worker.py and the README's
deployment section): gevent workers, so slow clients cannot starve the server. The hook below
starts each worker's reload job as soon as the worker is up, rather than with its first
request, so an idle worker's catalog stays current too."""

from feedserver.worker import gunicorn_settings

bind = "127.0.0.1:8000"
workers = 2
_serving = gunicorn_settings()
worker_class = _serving["worker_class"]
worker_connections = _serving["worker_connections"]
keepalive = _serving["keepalive"]
timeout = _serving["timeout"]
graceful_timeout = _serving["graceful_timeout"]


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Start the worker's reload job (and WebSub publishing, when configured)."""
    from feedserver.scheduler import start_in_worker

    start_in_worker(worker.wsgi)
