"""Settings (feedserver.config.load_config): defaults, the YAML file, FEEDSERVER_* variables,
and one clear line naming the key for every bad value."""

from __future__ import annotations

import dataclasses
import gc
import ipaddress
import logging
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gunicorn.arbiter import Arbiter

from feedserver import config, create_app
from feedserver.config import ConfigError, StartupError, app_settings, check_seeds_dir, load_config
from feedserver.gunicorn_hooks import serving_app
from feedserver.settings import SETTINGS, Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {
    "seeds_dir": "seeds",
    "reload_interval": 60,
    "base_url": "",
    "site_title": "feedserver",
    "site_description": "News feeds by topic and provider",
    "language": "en",
    "feed_limit": 50,
    "max_feed_limit": 500,
    "page_size": 20,
    "websub_hub": "",
    "feed_image": "",
    "max_file_bytes": 1048576,
    "health_details_from": (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1")),
    "trusted_proxies": (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1")),
    "stats_db": "auto",
    "stats_retention_days": 400,
    "stats_flush_seconds": 5,
    "stats_public": False,
    "metrics_public": False,
    "polite_polling": True,
    "cache_dir": "auto",
    "watch_seeds": True,
    "render_cache_bytes": 64_000_000,
}


def write_config(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), "utf-8")
    return path


def values(settings: Settings) -> dict[str, Any]:
    return {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)}


def test_defaults() -> None:
    # The tests' environment turns polite polling off (see conftest.py).
    assert values(load_config()) == {**DEFAULTS, "polite_polling": False}
    assert values(load_config(environ={})) == DEFAULTS


def test_settings_table_matches_defaults() -> None:
    assert {s.name: s.parse(s.default) for s in SETTINGS} == DEFAULTS
    assert all(s.help for s in SETTINGS)


def test_settings_class_has_one_typed_attribute_per_row_of_the_table() -> None:
    fields = dataclasses.fields(Settings)
    assert [field.name for field in fields] == [setting.name for setting in SETTINGS]
    hints = typing.get_type_hints(Settings)
    for setting in SETTINGS:
        hint = hints[setting.name]
        parsed = setting.parse(setting.default)
        assert isinstance(parsed, typing.get_origin(hint) or hint), setting.name
        if typing.get_origin(hint) is tuple:
            (item, _) = typing.get_args(hint)
            assert all(isinstance(value, item) for value in parsed), setting.name


def test_settings_cannot_be_changed() -> None:
    settings = load_config(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.feed_limit = 5  # type: ignore[misc]


def test_bundled_config_file_is_the_settings_declarations() -> None:
    # Each setting is declared once (a field of Settings); the bundled file follows from it.
    text = (ROOT / "config" / "feedserver.yaml").read_text("utf-8")
    assert text == config.example_config(), "remake it with config.example_config()"


def test_bundled_config_file_lists_every_setting_at_its_default() -> None:
    data = yaml.safe_load((ROOT / "config" / "feedserver.yaml").read_text("utf-8"))
    assert set(data) == set(DEFAULTS)
    config = load_config(environ={"FEEDSERVER_CONFIG": str(ROOT / "config" / "feedserver.yaml")})
    assert values(config) == DEFAULTS


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "site.yaml",
        {"site_title": "My feeds", "feed_limit": 20, "base_url": "https://feeds.example.com/"},
    )
    config = load_config(environ={"FEEDSERVER_CONFIG": str(path)})
    assert config.site_title == "My feeds"
    assert config.feed_limit == 20
    assert config.base_url == "https://feeds.example.com"
    assert config.reload_interval == 60


def test_config_file_named_by_the_caller_wins_over_the_environment(tmp_path: Path) -> None:
    named = write_config(tmp_path / "named.yaml", {"site_title": "Named"})
    other = write_config(tmp_path / "other.yaml", {"site_title": "Other"})
    config = load_config(environ={"FEEDSERVER_CONFIG": str(other)}, config_file=named)
    assert config.site_title == "Named"


def test_bad_override_names_where_it_came_from() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({"feed_limit": 0}, environ={}, source="command line")
    assert str(raised.value).startswith("config: feed_limit (command line) must be between")


def test_config_file_from_the_real_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path / "site.yaml", {"language": "en-GB"})
    monkeypatch.setenv("FEEDSERVER_CONFIG", str(path))
    assert load_config().language == "en-GB"


def test_default_config_file_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    write_config(tmp_path / "config" / "feedserver.yaml", {"reload_interval": 5})
    monkeypatch.chdir(tmp_path)
    assert load_config().reload_interval == 5


def test_empty_config_file_means_defaults(tmp_path: Path) -> None:
    path = write_config(tmp_path / "empty.yaml", "# nothing set\n")
    assert values(load_config(environ={"FEEDSERVER_CONFIG": str(path)})) == DEFAULTS


def test_environment_overrides_the_file_and_overrides_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path / "site.yaml", {"feed_limit": 20, "site_title": "File"})
    monkeypatch.setenv("FEEDSERVER_CONFIG", str(path))
    monkeypatch.setenv("FEEDSERVER_FEED_LIMIT", "30")
    monkeypatch.setenv("FEEDSERVER_RELOAD_INTERVAL", " 7 ")
    monkeypatch.setenv("FEEDSERVER_SEEDS_DIR", "/srv/seeds")
    config = load_config()
    assert (config.feed_limit, config.reload_interval) == (30, 7)
    assert config.seeds_dir == "/srv/seeds"
    assert config.site_title == "File"
    assert load_config({"feed_limit": 40}).feed_limit == 40


@pytest.mark.parametrize(
    ("variable", "key", "value", "expected"),
    [
        ("FEEDSERVER_SEEDS_DIR", "seeds_dir", "/data/seeds", "/data/seeds"),
        ("FEEDSERVER_RELOAD_INTERVAL", "reload_interval", "1", 1),
        ("FEEDSERVER_BASE_URL", "base_url", "http://localhost:8000/", "http://localhost:8000"),
        ("FEEDSERVER_BASE_URL", "base_url", "", ""),
        ("FEEDSERVER_SITE_TITLE", "site_title", "News", "News"),
        ("FEEDSERVER_SITE_DESCRIPTION", "site_description", "All of it", "All of it"),
        ("FEEDSERVER_LANGUAGE", "language", "de-CH", "de-CH"),
        ("FEEDSERVER_FEED_LIMIT", "feed_limit", "10", 10),
        ("FEEDSERVER_MAX_FEED_LIMIT", "max_feed_limit", "100", 100),
        ("FEEDSERVER_MAX_FILE_BYTES", "max_file_bytes", "4096", 4096),
    ],
)
def test_every_setting_has_an_environment_variable(
    variable: str, key: str, value: str, expected: object
) -> None:
    assert getattr(load_config(environ={variable: value}), key) == expected


BAD_VALUES = [
    ("reload_interval", "abc"),
    ("reload_interval", "0"),
    ("reload_interval", "86401"),
    ("reload_interval", "1.5"),
    ("feed_limit", "0"),
    ("feed_limit", "-3"),
    ("max_feed_limit", "ten"),
    ("max_file_bytes", "10"),
    ("base_url", "ftp://x"),
    ("base_url", "feeds.example.com"),
    ("base_url", "https://feeds.example.com/?a=1"),
    ("language", "english language"),
    ("site_title", ""),
    ("seeds_dir", "  "),
    ("feed_image", "logo.png"),
    ("feed_image", "https://cdn.example.com/logo.svg"),
]


def assert_one_line_naming(error: ConfigError, key: str) -> None:
    message = str(error)
    assert key in message
    assert "\n" not in message
    assert message.strip() == message


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_bad_value_from_environment(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ={f"FEEDSERVER_{key.upper()}": value})
    assert_one_line_naming(raised.value, key)


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_bad_value_from_overrides(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({key: value}, environ={})
    assert_one_line_naming(raised.value, key)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"reload_interval": "abc"}, "reload_interval"),
        ({"reload_interval": True}, "reload_interval"),
        ({"feed_limit": 0}, "feed_limit"),
        ({"feed_limit": 2.5}, "feed_limit"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"site_title": ["a", "list"]}, "site_title"),
        ({"no_such_setting": 1}, "no_such_setting"),
        ({"feed_limit": 5, "Reload_Interval": 3}, "Reload_Interval"),
    ],
)
def test_bad_value_in_config_file(tmp_path: Path, data: dict[str, Any], key: str) -> None:
    path = write_config(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"FEEDSERVER_CONFIG": str(path)})
    assert_one_line_naming(raised.value, key)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("feed_limit: [1\n", ("not valid YAML",)),
        ("- a\n- b\n", ("mapping",)),
        ("just text\n", ("mapping",)),
    ],
)
def test_unusable_config_file(tmp_path: Path, text: str, words: tuple[str, ...]) -> None:
    path = write_config(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"FEEDSERVER_CONFIG": str(path)})
    assert "\n" not in str(raised.value)
    for word in words:
        assert word in str(raised.value)


def test_missing_config_file_named_by_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"FEEDSERVER_CONFIG": str(tmp_path / "missing.yaml")})
    assert "missing.yaml" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({"feed_limt": 5}, environ={})
    assert_one_line_naming(raised.value, "feed_limt")


def test_feed_limit_above_max_feed_limit_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({"feed_limit": 100, "max_feed_limit": 50}, environ={})
    assert "feed_limit" in str(raised.value) and "max_feed_limit" in str(raised.value)


def test_create_app_refuses_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        create_app({"seeds_dir": str(tmp_path), "feed_limit": 0})


def test_create_app_uses_environment(seeds_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDSERVER_SEEDS_DIR", str(seeds_dir))
    monkeypatch.setenv("FEEDSERVER_SITE_TITLE", "From the environment")
    client = create_app().test_client()
    assert client.get("/healthz").get_json()["articles"] == 2
    assert b"<title>From the environment</title>" in client.get("/feed.rss").data


def test_wsgi_with_bad_setting_exits_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FEEDSERVER_FEED_LIMIT": "0", "FEEDSERVER_SEEDS_DIR": "x"}
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # gunicorn's boot-error code: its master stops instead of booting the worker again.
    assert result.returncode == Arbiter.WORKER_BOOT_ERROR
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "feed_limit" in lines[0]
    assert "Traceback" not in result.stderr


def test_only_a_serving_process_freezes_what_it_loaded(seeds_dir: Path) -> None:
    before = gc.get_freeze_count()
    create_app({"seeds_dir": str(seeds_dir)})  # as tests and `feedserver build` do
    assert gc.get_freeze_count() == before
    try:
        app = serving_app(lambda: load_config({"seeds_dir": str(seeds_dir)}))
        assert gc.get_freeze_count() > before
        assert app_settings(app).seeds_dir == str(seeds_dir)
    finally:
        gc.unfreeze()


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in readme, setting.name


def test_unknown_environment_variable_is_a_warning_naming_the_closest_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(config, "_warned_variables", set())
    environ = {"FEEDSERVER_RELOAD_INTERVALL": "5", "FEEDSERVER_CONFIG": "", "OTHER": "x"}
    with caplog.at_level(logging.WARNING, logger="feedserver.config"):
        first = load_config(environ=environ)
        load_config(environ=environ)  # once per process, not once per load
    assert first.reload_interval == 60  # ignored
    (record,) = caplog.records
    message = record.getMessage()
    assert "FEEDSERVER_RELOAD_INTERVALL" in message
    assert "did you mean FEEDSERVER_RELOAD_INTERVAL?" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("variable", "closest"),
    [
        ("FEEDSERVER_SEED_DIR", "FEEDSERVER_SEEDS_DIR"),
        ("FEEDSERVER_BASEURL", "FEEDSERVER_BASE_URL"),
        ("FEEDSERVER_CONFIG_FILE", "FEEDSERVER_CONFIG"),
        ("FEEDSERVER_seeds_dir", "FEEDSERVER_SEEDS_DIR"),
    ],
)
def test_closest_setting(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    closest: str,
) -> None:
    monkeypatch.setattr(config, "_warned_variables", set())
    with caplog.at_level(logging.WARNING, logger="feedserver.config"):
        load_config(environ={variable: "x"})
    assert caplog.records[0].getMessage().endswith(f"did you mean {closest}?")


def test_known_variables_are_not_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(config, "_warned_variables", set())
    with caplog.at_level(logging.WARNING, logger="feedserver.config"):
        config.warn_unknown_variables(dict.fromkeys(config.known_variables(), "x"))
    assert caplog.records == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.0/8, ::1", ("10.0.0.0/8", "::1/128")),
        (["192.0.2.7", "2001:db8::/32"], ("192.0.2.7/32", "2001:db8::/32")),
        ("", ()),
        ([], ()),
    ],
)
def test_health_details_from(value: Any, expected: tuple[str, ...]) -> None:
    networks = load_config({"health_details_from": value}, environ={}).health_details_from
    assert tuple(str(network) for network in networks) == expected


@pytest.mark.parametrize("value", ["localhost", "10.0.0.0/33", "10.0.0.1/8/2", 5])
def test_bad_health_details_from_names_the_setting(value: Any) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({"health_details_from": value}, environ={})
    assert_one_line_naming(raised.value, "health_details_from")


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: tmp / "nowhere", ("nowhere", "no such directory")),
        (lambda tmp: tmp / "file.txt", ("file.txt", "not a directory")),
    ],
)
def test_seeds_dir_that_cannot_be_listed_stops_start_up(
    tmp_path: Path, make: Callable[[Path], Path], words: tuple[str, ...]
) -> None:
    (tmp_path / "file.txt").write_text("not a directory", "utf-8")
    path = make(tmp_path)
    with pytest.raises(StartupError) as raised:
        create_app({"seeds_dir": str(path)})
    assert not isinstance(raised.value, ConfigError)
    assert "\n" not in str(raised.value)
    for word in words:
        assert word in str(raised.value)
    assert str(path) in str(raised.value)


def test_relative_seeds_dir_is_named_with_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(StartupError) as raised:
        check_seeds_dir("seeds")
    assert f"seeds ({Path.cwd() / 'seeds'})" in str(raised.value)
