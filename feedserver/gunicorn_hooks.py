"""gunicorn server hooks, and the app of a serving process, shared by `feedserver serve`,
config/gunicorn.conf.py and wsgi.py.

Imports nothing of the app at module level: the metrics folder must be chosen (in the
master, before any worker exists) before prometheus_client is imported anywhere."""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from .settings import Settings

SettingsLoader = Callable[[], "Settings"]

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Combined log format plus the response time in milliseconds, whether the rendered response
# came from the cache, and the feed it served (all, topic:<slug>, provider:<key>, or -).
ACCESS_LOG_FORMAT = (
    '%(h)s - - %(t)s "%(r)s" %(s)s %(B)s "%(f)s" "%(a)s" '
    "%(M)sms cache=%({feedserver.cache}e)s feed=%({feedserver.feed}e)s"
)
_created: list[str] = []


def prepare_metrics_dir() -> str:
    """Choose this server's metrics folder (unless the operator set one), for its workers."""
    directory = os.environ.get(METRICS_ENV)
    if not directory:
        directory = tempfile.mkdtemp(prefix="feedserver-metrics-")
        os.environ[METRICS_ENV] = directory
        _created.append(directory)
        # Also when the master stops without on_exit (a start-up check failing): only the
        # process that made the folder removes it, never a worker leaving.
        atexit.register(_remove_if_owner, directory, os.getpid())
    return directory


def _remove_if_owner(directory: str, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)


def prepare_server(address: str) -> None:
    """In the master, before the app may be loaded: what belongs to this server alone (the
    polling table its workers share, and the address that names its default stats_db)."""
    from .server_state import belong_to

    belong_to(address)


def own_control_socket(address: str) -> str | None:
    """The control socket of the server on `address` (gunicorn 25.1 and later have one),
    or None where gunicorn has none."""
    from gunicorn.config import Config

    from .server_state import control_socket

    setting = Config().settings.get("control_socket")
    return None if setting is None else control_socket(address, str(setting.default))


def gunicorn_bind(configured: str) -> str:
    """The address gunicorn will bind, as it decides it: its command line's --bind, else
    GUNICORN_CMD_ARGS', else the config file's (`configured`). For config/gunicorn.conf.py,
    which gunicorn reads in the master before it may load the app (--preload)."""
    from gunicorn.config import Config

    parser = Config().parser()
    for arguments in (sys.argv[1:], shlex.split(os.environ.get("GUNICORN_CMD_ARGS", ""))):
        try:
            found, _ = parser.parse_known_args(arguments)
        except SystemExit:  # arguments gunicorn itself refuses: it will say so
            continue
        if found.bind:
            return str(found.bind[0])
    return configured


def on_starting(server: Any) -> None:
    """In the master, at start (config/gunicorn.conf.py): this server's own state (again,
    now from the bind gunicorn settled on, unless the app is loaded already), then the
    checks of `start_master`, with settings from the config file and the environment."""
    from .config import load_config

    if server.cfg.bind and not server.cfg.preload_app:
        prepare_server(server.cfg.bind[0])
    start_master(load_config, server.cfg.loglevel)


def start_master(load_settings: SettingsLoader, log_level: str | None = None) -> None:
    """Log at gunicorn's --log-level, which the workers inherit; stop the server with one
    line for a bad setting or a missing seeds directory, before any worker forks; then an
    empty metrics folder, so old servers' counts do not add up."""
    from .config import StartupError, check_seeds_dir
    from .fork_safety import hold_log_handlers_across_forks
    from .logs import configure_logging
    from .metrics import clean_multiprocess_dir

    hold_log_handlers_across_forks()
    configure_logging(log_level)
    try:
        check_seeds_dir(load_settings().seeds_dir)
    except StartupError as error:
        sys.exit(f"feedserver: {error}")

    clean_multiprocess_dir(prepare_metrics_dir())


def serving_app(load_settings: SettingsLoader | None = None) -> Flask:
    """The app of a serving process: each gunicorn worker, or the master before it forks
    (--preload). Settings from `load_settings`, else the config file and the environment.

    A bad setting or seeds directory ends the process with one line and gunicorn's boot-error
    code: the master then stops the server rather than start this worker again and again."""
    from gunicorn.arbiter import Arbiter

    from . import create_app
    from .config import StartupError, load_config

    try:
        app = create_app((load_settings or load_config)(), reload_in_background=True)
    except StartupError as error:
        print(f"feedserver: {error}", file=sys.stderr, flush=True)
        sys.exit(Arbiter.WORKER_BOOT_ERROR)
    # Here, where a serving process has finished loading, not in create_app (tests and
    # `feedserver build` make apps that do not live on): the loaded catalog lives as long as
    # the process, so keep the garbage collector from walking it again and again (and, after
    # a --preload fork, from touching every page of it, which would copy memory the workers
    # could share with the master).
    gc.freeze()
    return app


def post_worker_init(worker: Any) -> None:
    """Start the worker's reload job (and WebSub publishing) as soon as the worker is up;
    in a worker whose master reloads for it, follow the master's heartbeat instead."""
    from .scheduler import start_in_worker
    from .shared_reload import in_worker

    if not in_worker(worker.wsgi):
        start_in_worker(worker.wsgi)


def share_reloads(server: Any) -> None:
    """In the master, before the first workers fork (gunicorn's when_ready): reload here for
    every worker and replace the workers after each change (config/gunicorn.conf.py and
    `feedserver serve`). Needs the app loaded in the master (preload_app, which both set);
    without it, each worker reloads."""
    from .shared_reload import MasterReloads

    if not server.cfg.preload_app:
        server.log.warning("workers reload on their own: sharing reloads needs --preload")
        return
    MasterReloads(server.app.wsgi(), server).start()


def worker_exit(server: Any, worker: Any) -> None:
    """In a worker that is leaving: stop its reload job, run the exit handlers (the stats
    flush, logging's flush and close), then end the process at once, with its exit code.

    The interpreter's teardown is skipped on purpose. It clears gevent's modules before the
    last logging handlers are freed (Flask's default handler, a module global), and freeing a
    handler takes logging's lock, whose monkey-patched get_ident is None by then: each worker
    printed "Exception ignored ... TypeError: 'NoneType' object is not callable". A forked
    worker holds nothing the system does not release (multiprocessing ends its forked
    children the same way)."""
    from .scheduler import stop_in_worker

    code = _exit_code(sys.exc_info()[1])  # gunicorn calls this hook as sys.exit unwinds
    try:
        stop_in_worker(getattr(worker, "wsgi", None))
    except Exception:  # the exit handlers below must run all the same
        logging.getLogger(__name__).exception("the reload job did not stop")
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or broken stream: nothing to save
            stream.flush()
    os._exit(code)


def _exit_code(leaving: BaseException | None) -> int:
    """The status the interpreter would end with while `leaving` unwinds (printing the
    message of a `sys.exit("...")`, as it does)."""
    if leaving is None:
        return 0
    if not isinstance(leaving, SystemExit):
        return 1
    if leaving.code is None or isinstance(leaving.code, int):
        return leaving.code or 0
    print(leaving.code, file=sys.stderr)
    return 1


def child_exit(server: Any, worker: Any) -> None:
    """Forget a dead worker's live gauges."""
    from .metrics import mark_worker_dead

    mark_worker_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics folder this server made for itself."""
    for directory in _created:
        shutil.rmtree(directory, ignore_errors=True)
