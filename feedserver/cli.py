"""The `feedserver` command: `serve` runs the app under gunicorn, `check` reports every
problem in a seeds directory."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import ConfigError, Settings, StartupError, check_seeds_dir, load_config
from .models import Article
from .store import CatalogStore


def command_line_settings(
    args: argparse.Namespace, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """The settings a command runs with: its --config file (else FEEDSERVER_CONFIG's, else
    config/feedserver.yaml) and the environment, with its --seeds (or DIRECTORY) and
    `overrides` winning over both."""
    chosen = dict(overrides or {})
    if args.seeds:
        chosen["seeds_dir"] = args.seeds
    return load_config(chosen, config_file=args.config, source="command line")


def serve(args: argparse.Namespace) -> int:
    """Run the app under gunicorn's gevent workers with the given address and workers."""
    from gunicorn.app.base import BaseApplication

    from . import gunicorn_hooks
    from .worker import gunicorn_settings

    # Fail with one clear line before gunicorn starts.
    check_seeds_dir(command_line_settings(args).seeds_dir)
    # Whoever loads the app (each worker, or the master with --preload) loads the settings
    # again, as under `gunicorn wsgi:app`, so that a HUP reads the config file anew. gunicorn
    # forks its workers from this process: this loader and its arguments reach them as they
    # are, with no need of the environment.
    load_settings = functools.partial(command_line_settings, args)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            # The same worker model and time limits as config/gunicorn.conf.py.
            for name, value in gunicorn_settings().items():
                self.cfg.set(name, value)
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("preload_app", args.preload)
            self.cfg.set("accesslog", "-")
            self.cfg.set("access_log_format", gunicorn_hooks.ACCESS_LOG_FORMAT)
            for hook in ("post_worker_init", "child_exit", "on_exit"):
                self.cfg.set(hook, getattr(gunicorn_hooks, hook))
            # config/gunicorn.conf.py's on_starting, with this command's settings.
            self.cfg.set("on_starting", lambda server: gunicorn_hooks.start_master(load_settings))

        def load(self) -> Any:
            return gunicorn_hooks.serving_app(load_settings)

    # Chosen before the app may be loaded (--preload loads it before any hook runs).
    gunicorn_hooks.prepare_metrics_dir()
    gunicorn_hooks.prepare_server(f"{args.host}:{args.port}")
    Server().run()
    return 0


def name_merges(articles: Iterable[Article]) -> list[str]:
    """One line for each topic or provider that different names share (`Microsoft AI` and
    `microsoft  ai`): the site shows them as one, under one of the names."""
    names: dict[str, set[str]] = defaultdict(set)
    for article in articles:
        for topic in article.topics:
            names[f"topics/{topic.key}"].add(topic.name)
        if article.provider is not None:
            names[f"providers/{article.provider.key}"].add(article.provider.name)
    return [
        f"{where}: warning: one {where.split('/')[0][:-1]} for the names "
        + ", ".join(repr(name) for name in sorted(spellings))
        for where, spellings in sorted(names.items())
        if len(spellings) > 1
    ]


def check(args: argparse.Namespace) -> int:
    """Read every seed file, print one line per problem and a summary; 1 if any is unusable."""
    settings = command_line_settings(args)
    root = Path(settings.seeds_dir)
    if not root.is_dir():
        print(f"{root}: not a directory", file=sys.stderr)
        return 1
    # The server's own store, loaded once: check sees exactly what would be served.
    store = CatalogStore(root, settings.max_file_bytes, settings.site_title)
    with _quiet(logging.getLogger(CatalogStore.__module__)):  # the lines below say it all
        report = store.reload()
    if report.error is not None:
        print(f"{root}: {report.error}", file=sys.stderr)
        return 1
    catalog = store.catalog
    for problem in catalog.problems:
        severity = "skipped" if problem.fatal else "warning"
        print(f"{problem.file}: {severity}: {problem.reason}")
    articles = store.articles_read()
    merges = name_merges(articles)
    for line in merges:
        print(line)
    unusable = sum(1 for problem in catalog.problems if problem.fatal)
    print(
        f"{catalog.files} files, {len(articles)} articles, "
        f"{sum(1 for a in articles if a.published)} published "
        f"({len(catalog.everything.articles)} visible now), "
        f"{len(catalog.problems) + len(merges)} problems ({unusable} files unusable)"
    )
    return 1 if unusable else 0


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Silence a logger for a while: `check` prints each problem itself, once."""
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def build(args: argparse.Namespace) -> int:
    """Write every feed and page as static files under OUTDIR; with --watch, keep doing so."""
    from . import create_app
    from .export import BuildRefused, build_site, unreadable_seeds, watch

    # The build's own requests are no readers: nothing is counted or limited.
    overrides: dict[str, Any] = {"stats_db": "", "polite_polling": False}
    if args.base_url:
        overrides["base_url"] = args.base_url
    settings = command_line_settings(args, overrides)
    outdir = Path(args.outdir)
    # An empty catalog would replace every file of a good site: refuse before loading.
    problem = unreadable_seeds(Path(settings.seeds_dir))
    if problem:
        print(f"feedserver: build: {problem}; nothing written to {outdir}", file=sys.stderr)
        return 1
    app = create_app(settings)
    if not settings.base_url:
        print(
            "feedserver: build needs base_url (--base-url or the config), "
            "the address the files will be served at",
            file=sys.stderr,
        )
        return 2
    try:
        report = build_site(app, outdir, args.allow_empty)
    except BuildRefused as refusal:
        print(f"feedserver: build: {refusal}", file=sys.stderr)
        return 1
    for failure in report.failed:
        print(f"feedserver: build: {failure}", file=sys.stderr)
    print(
        f"{report.files} files: {report.written} written, {report.unchanged} unchanged, "
        f"{report.removed} removed, {len(report.failed)} failed"
    )
    if args.watch:
        with contextlib.suppress(KeyboardInterrupt):
            watch(app, outdir, settings.reload_interval, args.allow_empty)
    return 1 if report.failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="feedserver", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_command = commands.add_parser("serve", help="serve the feeds under gunicorn")
    serve_command.add_argument("--host", default="127.0.0.1")
    serve_command.add_argument("--port", type=int, default=8000)
    serve_command.add_argument("--workers", type=int, default=2)
    serve_command.add_argument(
        "--preload", action="store_true", help="load the seeds once, then fork"
    )
    serve_command.add_argument(
        "--seeds", metavar="DIR", help="seeds directory (overrides seeds_dir)"
    )
    serve_command.add_argument(
        "--config", metavar="FILE", help="config file (default config/feedserver.yaml)"
    )
    serve_command.set_defaults(handler=serve)

    build_command = commands.add_parser("build", help="write every feed and page as static files")
    build_command.add_argument("outdir", metavar="OUTDIR")
    build_command.add_argument("--base-url", help="URL the files will be served at (base_url)")
    build_command.add_argument(
        "--seeds", metavar="DIR", help="seeds directory (overrides seeds_dir)"
    )
    build_command.add_argument("--config", metavar="FILE", help="config file to read")
    build_command.add_argument(
        "--watch", action="store_true", help="rebuild on every reload interval"
    )
    build_command.add_argument(
        "--allow-empty",
        action="store_true",
        help="build even when it removes every article of the previous build",
    )
    build_command.set_defaults(handler=build)

    check_command = commands.add_parser("check", help="report every problem in a seeds directory")
    # Stored as `seeds`, like the other commands' --seeds.
    check_command.add_argument(
        "seeds", metavar="directory", nargs="?", help="seeds directory (default: seeds_dir)"
    )
    check_command.add_argument("--config", metavar="FILE", help="config file")
    check_command.set_defaults(handler=check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `feedserver` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(f"feedserver: {error}", file=sys.stderr)
        return 2
    except StartupError as error:  # the seeds directory cannot be listed
        print(f"feedserver: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
