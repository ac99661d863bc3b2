"""The `feedserver` command: `serve` runs the app under gunicorn, `build` writes every feed
and page as static files, `check` reports every problem in a seeds directory."""

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

from .config import ConfigError, StartupError, check_seeds_dir, load_config
from .load.records import ParsedSeed
from .models import Article
from .settings import Settings
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
    # The master loads the app (as config/gunicorn.conf.py has it: it reloads for every
    # worker, and the workers share its catalog), with the settings loaded again, as under
    # `gunicorn wsgi:app`. gunicorn forks its workers from this process: this loader and its
    # arguments reach them as they are, with no need of the environment.
    load_settings = functools.partial(command_line_settings, args)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            # The same worker model and time limits as config/gunicorn.conf.py.
            for name, value in gunicorn_settings().items():
                self.cfg.set(name, value)
            self.cfg.set("bind", f"{args.host}:{args.port}")
            socket_path = gunicorn_hooks.own_control_socket(f"{args.host}:{args.port}")
            if socket_path is not None:
                self.cfg.set("control_socket", socket_path)
            self.cfg.set("workers", args.workers)
            # Always, --preload or not (the flag is kept for the commands that pass it).
            self.cfg.set("preload_app", True)
            self.cfg.set("accesslog", "-")
            self.cfg.set("access_log_format", gunicorn_hooks.ACCESS_LOG_FORMAT)
            for hook in ("post_worker_init", "worker_exit", "child_exit", "on_exit"):
                self.cfg.set(hook, getattr(gunicorn_hooks, hook))
            self.cfg.set("when_ready", gunicorn_hooks.share_reloads)
            self.cfg.set("loglevel", args.log_level)
            # config/gunicorn.conf.py's on_starting, with this command's settings.
            self.cfg.set(
                "on_starting",
                lambda server: gunicorn_hooks.start_master(load_settings, server.cfg.loglevel),
            )

        def load(self) -> Any:
            return gunicorn_hooks.serving_app(load_settings)

    # Chosen before the app is loaded (in the master, before any hook runs).
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
    withheld = unpublished_lines(store.seeds_served())
    for line in withheld:
        print(line)
    unusable = sum(1 for problem in catalog.problems if problem.fatal)
    print(
        f"{catalog.files} files, {len(articles)} articles, "
        f"{sum(1 for a in articles if a.published)} published "
        f"({len(catalog.everything.articles)} visible now), "
        f"{len(withheld)} withheld as unpublished, "
        f"{len(catalog.problems) + len(merges)} problems ({unusable} files unusable)"
    )
    # Withheld files are usable: an author's choice (or slip) that the lines above show.
    return 1 if unusable else 0


def unpublished_lines(seeds: Iterable[ParsedSeed]) -> list[str]:
    """One line for each file that parsed but is not served because its `published` is not
    the boolean true: `path: withheld: published is false` (or missing, or not true)."""
    lines = []
    for seed in seeds:
        if seed.article is None or seed.article.published:
            continue
        # The parser's warning tells a missing or mistyped flag from a plain `false`.
        said = [warning for warning in seed.warnings if warning.startswith("'published'")]
        if not said:
            reason = "published is false"
        elif "missing" in said[0]:
            reason = "published is missing"
        else:
            reason = "published is not the boolean true"
        lines.append(f"{seed.file.path}: withheld: {reason}")
    return lines


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
    from . import create_app, forkparse
    from .export import BuildRefused, build_site, unreadable_seeds, watch

    # The build's own requests are no readers: nothing is counted or limited.
    overrides: dict[str, Any] = {"stats_db": "", "polite_polling": False}
    if args.base_url:
        overrides["base_url"] = args.base_url
    settings = command_line_settings(args, overrides)
    if not settings.base_url:
        # Feeds carry absolute links (a reader resolves nothing against a feed's address), and
        # a file on disk knows no host to take them from.
        args.parser.error(f"--base-url URL is required unless {BASE_URL_SOURCES} is set")
    outdir = Path(args.outdir)
    # An empty catalog would replace every file of a good site: refuse before loading.
    problem = unreadable_seeds(Path(settings.seeds_dir))
    if problem:
        print(f"feedserver: build: {problem}; nothing written to {outdir}", file=sys.stderr)
        return 1
    with forkparse.shared():  # a cold load's files parsed in two processes
        app = create_app(settings)
    try:
        report = build_site(app, outdir, args.allow_empty)
    except BuildRefused as refusal:
        print(f"feedserver: build: {refusal}", file=sys.stderr)
        return 1
    for failure in report.failed:
        print(f"feedserver: build: {failure}", file=sys.stderr)
    print(
        f"{report.files} files: {report.written} written, {report.unchanged} unchanged "
        f"({report.skipped} not rendered again: same inputs), "
        f"{report.removed} removed, {len(report.failed)} failed"
    )
    if args.watch:
        with contextlib.suppress(KeyboardInterrupt):
            watch(app, outdir, settings.reload_interval, args.allow_empty)
    return 1 if report.failed else 0


BASE_URL_SOURCES = "the base_url setting (config file or FEEDSERVER_BASE_URL)"
CONFIG_HELP = "config file (default: FEEDSERVER_CONFIG, else config/feedserver.yaml)"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
SEEDS_HELP = "seeds directory (default: the seeds_dir setting, `seeds`)"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's "(default: ...)" after each option's help, but only for a real default:
    a flag is off unless given, and an option without one says in its help what it falls
    back on."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="feedserver", description=__doc__, formatter_class=_HelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, **options: Any) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=summary, description=summary, formatter_class=_HelpFormatter, **options
        )

    serve_command = command("serve", "serve the feeds under gunicorn's gevent workers")
    serve_command.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve_command.add_argument(
        "--port", type=int, default=8000, metavar="PORT", help="TCP port to listen on"
    )
    serve_command.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="worker processes, which share the master's catalog",
    )
    serve_command.add_argument(
        "--preload",
        action="store_true",
        help="accepted for older commands: the master always loads the seeds, then forks",
    )
    serve_command.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="least severe lines logged, gunicorn's and the app's; debug adds each reload "
        "that changed nothing and APScheduler's own lines",
    )
    serve_command.add_argument("--seeds", metavar="DIR", help=SEEDS_HELP)
    serve_command.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    serve_command.set_defaults(handler=serve)

    build_command = command(
        "build",
        "write every feed and page as static files",
        # argparse cannot say "required unless a setting is there": the usage says it.
        usage="%(prog)s [-h] --base-url URL [--seeds DIR] [--config FILE]\n"
        "                        [--watch] [--allow-empty] OUTDIR",
    )
    build_command.add_argument("outdir", metavar="OUTDIR", help="folder to write the site to")
    build_command.add_argument(
        "--base-url",
        metavar="URL",
        help="absolute URL the files will be served at, e.g. https://feeds.example.com; "
        f"required unless {BASE_URL_SOURCES} is set",
    )
    build_command.add_argument("--seeds", metavar="DIR", help=SEEDS_HELP)
    build_command.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    build_command.add_argument(
        "--watch", action="store_true", help="keep rebuilding every reload_interval seconds"
    )
    build_command.add_argument(
        "--allow-empty",
        action="store_true",
        help="build even when it removes every article of the previous build",
    )
    build_command.set_defaults(handler=build, parser=build_command)

    check_command = command("check", "report every problem in a seeds directory")
    # Stored as `seeds`, like the other commands' --seeds.
    check_command.add_argument("seeds", metavar="DIR", nargs="?", help=SEEDS_HELP)
    check_command.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
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
