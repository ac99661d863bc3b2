"""Loading the settings: defaults (settings.py), the config file, FEEDSERVER_* variables and
the caller's overrides, each value checked once into the frozen `Settings` the app is built
with; and the bundled config file made from the declarations."""

from __future__ import annotations

import difflib
import json
import logging
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from flask import Flask, current_app

from .settings import SETTINGS, SETTINGS_BY_NAME, Settings

ENV_PREFIX = "FEEDSERVER_"
CONFIG_ENV = "FEEDSERVER_CONFIG"
DEFAULT_CONFIG_FILE = Path("config") / "feedserver.yaml"

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """The server cannot start; the message is one line naming the setting or path."""


class ConfigError(StartupError):
    """A setting has a bad value; the message is one line naming the key."""


SETTINGS_EXTENSION = "feedserver.settings"


def app_settings(app: Flask) -> Settings:
    """The settings an app was built with (create_app keeps them in its extensions)."""
    settings: Settings = app.extensions[SETTINGS_EXTENSION]
    return settings


def current_settings() -> Settings:
    """The settings of the app handling the current request."""
    return app_settings(current_app)


EXAMPLE_HEADER = """\
# feedserver settings. Every key is optional; the value shown is the default.
# FEEDSERVER_CONFIG=path/to/other.yaml reads another file instead of this one, and
# FEEDSERVER_<KEY> (FEEDSERVER_SEEDS_DIR, FEEDSERVER_BASE_URL, ...) overrides one key; any
# other FEEDSERVER_* variable is ignored with a warning naming the closest setting.
"""


def example_config() -> str:
    """The bundled config/feedserver.yaml: every setting at its default, its help above it
    (tests/test_config.py keeps the file equal to this)."""
    parts = [EXAMPLE_HEADER]
    for setting in SETTINGS:
        comment = textwrap.fill(setting.help, 90, initial_indent="# ", subsequent_indent="# ")
        parts.append(f"{comment}\n{setting.name}: {_yaml_value(setting.default)}\n")
    return "\n".join(parts)


def _yaml_value(value: Any) -> str:
    """A default as the config file writes it: text unquoted unless YAML would read it as
    something else, lists in flow style."""
    if isinstance(value, tuple | list):
        return json.dumps(list(value))
    if isinstance(value, str) and (not value or yaml.safe_load(value) != value):
        return json.dumps(value)
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError(f"config file {path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must be a mapping of setting: value")
    unknown = sorted(str(key) for key in data if key not in SETTINGS_BY_NAME)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r}")
    return data


def _config_file(environ: Mapping[str, str], named: str | Path | None) -> Path | None:
    """The config file to read: the one named by the caller (the command line's --config),
    else by FEEDSERVER_CONFIG, else config/feedserver.yaml when there is one."""
    if named:
        return Path(named)
    variable = environ.get(CONFIG_ENV, "").strip()
    if variable:
        return Path(variable)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


# Unknown variables already warned about in this process (and, after a fork, its workers).
_warned_variables: set[str] = set()


def known_variables() -> list[str]:
    """Every FEEDSERVER_* environment variable that means something."""
    return sorted({ENV_PREFIX + setting.name.upper() for setting in SETTINGS} | {CONFIG_ENV})


def warn_unknown_variables(environ: Mapping[str, str]) -> None:
    """Log, once per variable, a FEEDSERVER_* variable that is no setting (a typo is not
    silently ignored), naming the closest one."""
    known = known_variables()
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name in _warned_variables:
            continue
        _warned_variables.add(name)
        closest = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0)[0]
        logger.warning(
            "feedserver: environment variable %s is not a setting and is ignored; did you mean %s?",
            name,
            closest,
        )


def check_seeds_dir(seeds_dir: str | Path) -> None:
    """Stop start-up with one line naming the path when the seeds directory cannot be listed.

    (A directory that disappears while serving is another matter: /healthz says degraded.)"""
    path = Path(seeds_dir)
    shown = str(path) if path.is_absolute() else f"{path} ({path.absolute()})"
    try:
        with os.scandir(path):
            pass
    except FileNotFoundError:
        raise StartupError(f"seeds_dir {shown}: no such directory") from None
    except NotADirectoryError:
        raise StartupError(f"seeds_dir {shown}: not a directory") from None
    except OSError as error:
        raise StartupError(
            f"seeds_dir {shown}: cannot be read ({error.strerror or error})"
        ) from None


def _raw_values(
    overrides: Mapping[str, Any],
    environ: Mapping[str, str],
    config_file: str | Path | None,
    source: str,
) -> dict[str, tuple[Any, str]]:
    """Each setting's unparsed value and where it came from; later sources win."""
    raw: dict[str, tuple[Any, str]] = {s.name: (s.default, "default") for s in SETTINGS}
    path = _config_file(environ, config_file)
    if path is not None:
        for key, value in _read_config_file(path).items():
            raw[key] = (value, f"config file {path}")
    for setting in SETTINGS:
        variable = ENV_PREFIX + setting.name.upper()
        if variable in environ:
            raw[setting.name] = (environ[variable], variable)
    for key, value in overrides.items():
        if key not in SETTINGS_BY_NAME:
            raise ConfigError(f"config: unknown setting {key!r}")
        raw[key] = (value, source)
    return raw


def _parsed(raw: Mapping[str, tuple[Any, str]]) -> Settings:
    values: dict[str, Any] = {}
    for name, (value, origin) in raw.items():
        try:
            values[name] = SETTINGS_BY_NAME[name].parse(value)
        except ValueError as error:
            raise ConfigError(f"config: {name} ({origin}) {error}") from None
    return Settings(**values)


def _check_together(settings: Settings) -> None:
    """Refuse settings that are each valid but do not go together."""
    if settings.feed_limit > settings.max_feed_limit:
        raise ConfigError(
            f"config: feed_limit ({settings.feed_limit}) must not exceed "
            f"max_feed_limit ({settings.max_feed_limit})"
        )
    if settings.websub_hub and not settings.base_url:
        raise ConfigError("config: websub_hub needs base_url, so the hub is told public feed URLs")


def load_config(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    config_file: str | Path | None = None,
    source: str = "overrides",
) -> Settings:
    """Merge defaults, the config file, FEEDSERVER_* variables and overrides; validate each.

    `config_file` names the file to read instead of FEEDSERVER_CONFIG's; `source` is what an
    error about an override calls its origin (the command line names its options)."""
    environ = os.environ if environ is None else environ
    warn_unknown_variables(environ)
    settings = _parsed(_raw_values(overrides or {}, environ, config_file, source))
    _check_together(settings)
    return settings
