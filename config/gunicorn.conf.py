"""gunicorn settings for feedserver: `gunicorn -c config/gunicorn.conf.py wsgi:app`.

Every gunicorn option can be set here or on the command line. The worker model and its time
limits are the ones `feedserver serve` uses (see feedserver/worker.py and the README's
deployment section): gevent workers, so slow clients cannot starve the server.

The master loads the seeds (preload_app) and reloads them for every worker; after a reload
that changed what is served it replaces the workers by new ones forked from it, which share
its catalog copy-on-write (feedserver/shared_reload.py): four workers hold about one catalog
in all rather than one each. Restart rather than HUP (a HUP reloads the app without moving
the reload job to it). The hooks make the workers follow the master's reloads (or, should
the app not be preloaded, start each worker's own reload job as soon as it is up), stop a
worker's job as it leaves (which then exits without the interpreter's teardown, see
worker_exit), and give the workers one Prometheus metrics folder, so that /metrics adds up
every worker's figures; and the master makes the polling table before the app loads, so
that polite polling's limits hold whichever worker answers and belong to this server alone."""

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
    share_reloads,
    worker_exit,
)
from feedserver.worker import gunicorn_settings

bind = "127.0.0.1:8000"
workers = 2
accesslog = "-"
access_log_format = ACCESS_LOG_FORMAT
# The master loads and reloads; its workers share its catalog (see above).
preload_app = True
when_ready = share_reloads
_serving = gunicorn_settings()
worker_class = _serving["worker_class"]
worker_connections = _serving["worker_connections"]
keepalive = _serving["keepalive"]
timeout = _serving["timeout"]
graceful_timeout = _serving["graceful_timeout"]

prepare_metrics_dir()
# Read in the master before the app loads, and again on each reload (HUP).
prepare_server(gunicorn_bind(bind))
# gunicorn's control socket (gunicornc) named after the server too, where gunicorn has one.
_control_socket = own_control_socket(gunicorn_bind(bind))
if _control_socket is not None:
    control_socket = _control_socket
