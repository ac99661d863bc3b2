"""gunicorn settings for feedserver: `gunicorn -c config/gunicorn.conf.py wsgi:app`.

Every gunicorn option can be set here or on the command line. The worker model and its time
limits are the ones `feedserver serve` uses (see feedserver/worker.py and the README's
deployment section): gevent workers, so slow clients cannot starve the server. The hooks start
each worker's reload job as soon as the worker is up (rather than with its first request, so
an idle worker's catalog stays current too), stop it as the worker leaves (which then exits
without the interpreter's teardown, see worker_exit), and give the workers one Prometheus
metrics folder, so that /metrics adds up every worker's figures; and the master makes the
polling table before any worker forks (or a --preload app loads), so that polite polling's
limits hold whichever worker answers and belong to this server alone."""

from feedserver.gunicorn_hooks import (  # noqa: F401 - gunicorn reads these names
    ACCESS_LOG_FORMAT,
    child_exit,
    gunicorn_bind,
    on_exit,
    on_starting,
    own_control_socket,
    post_worker_init,
    prepare_metrics_dir,
    prepare_server,
    worker_exit,
)
from feedserver.worker import gunicorn_settings

bind = "127.0.0.1:8000"
workers = 2
accesslog = "-"
access_log_format = ACCESS_LOG_FORMAT
_serving = gunicorn_settings()
worker_class = _serving["worker_class"]
worker_connections = _serving["worker_connections"]
keepalive = _serving["keepalive"]
timeout = _serving["timeout"]
graceful_timeout = _serving["graceful_timeout"]

prepare_metrics_dir()
# Read in the master before a --preload app loads, and again on each reload (HUP).
prepare_server(gunicorn_bind(bind))
# gunicorn's control socket (gunicornc) named after the server too, where gunicorn has one.
_control_socket = own_control_socket(gunicorn_bind(bind))
if _control_socket is not None:
    control_socket = _control_socket
