"""gunicorn settings for feedserver: `gunicorn -c config/gunicorn.conf.py wsgi:app`.

Every gunicorn option can be set here or on the command line. The hooks start each worker's
reload job as soon as the worker is up (rather than with its first request, so an idle
worker's catalog stays current too), and give the workers one Prometheus metrics folder, so
that /metrics adds up every worker's figures."""

from feedserver.gunicorn_hooks import (  # noqa: F401 - gunicorn reads these names
    ACCESS_LOG_FORMAT,
    child_exit,
    on_exit,
    on_starting,
    post_worker_init,
    prepare_metrics_dir,
)

bind = "127.0.0.1:8000"
workers = 2
accesslog = "-"
access_log_format = ACCESS_LOG_FORMAT

prepare_metrics_dir()
