"""The `feedserver check DIR` command (feedserver.cli.main)."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import servers
from feedserver.cli import build_parser, main


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_check_bundled_seeds_is_clean(capsys: pytest.CaptureFixture[str], seeds_dir: Path) -> None:
    code, lines, err = run_check(capsys, str(seeds_dir))
    assert code == 0
    assert err == ""
    *withheld, summary = lines
    assert len(withheld) == 3  # the unpublished ones, below
    assert "5 files" in summary
    assert "5 articles" in summary
    assert "2 published" in summary
    assert "0 problems" in summary


def test_check_reports_each_problem_as_path_and_reason(
    capsys: pytest.CaptureFixture[str],
    seeds_dir: Path,
    write_file: Callable[..., Path],
    write_seed: Callable[..., Path],
) -> None:
    write_file("sub/broken.txt", "---\ntitle: [unclosed\n---\n", directory=seeds_dir)
    write_seed("no-title.md", omit=("title",), directory=seeds_dir)
    write_seed("bad-url.yaml", webUrl="javascript:alert(1)", directory=seeds_dir)
    write_seed("warned.txt", topics="AI", directory=seeds_dir)
    code, lines, _ = run_check(capsys, str(seeds_dir))
    assert code == 1
    *problems, summary = [line for line in lines if ": withheld: " not in line]
    by_file = dict(line.split(": ", 1) for line in problems)
    assert set(by_file) == {"sub/broken.txt", "no-title.md", "bad-url.yaml", "warned.txt"}
    assert "invalid YAML" in by_file["sub/broken.txt"]
    assert "title" in by_file["no-title.md"]
    assert "webUrl" in by_file["bad-url.yaml"]
    assert "topics" in by_file["warned.txt"]
    assert "9 files" in summary
    assert "4 problems" in summary
    assert "3 files unusable" in summary
    assert str(seeds_dir) not in "\n".join(problems)


def test_check_with_only_warnings_exits_0(
    capsys: pytest.CaptureFixture[str], tmp_seeds: Path, write_seed: Callable[..., Path]
) -> None:
    write_seed("a.txt", published="true")
    write_seed("b.txt", webUrl="https://example.com/articles/a")  # a duplicate
    code, lines, _ = run_check(capsys, str(tmp_seeds))
    assert code == 0
    assert any(line.startswith("a.txt: ") and "published" in line for line in lines)
    assert any("duplicate" in line for line in lines)


def test_check_oversized_file_is_unusable(
    capsys: pytest.CaptureFixture[str],
    tmp_seeds: Path,
    tmp_path: Path,
    write_seed: Callable[..., Path],
) -> None:
    write_seed("big.txt", excerpt="x" * 5000)
    config = tmp_path / "small.yaml"
    config.write_text("max_file_bytes: 2048\n", "utf-8")
    code, lines, _ = run_check(capsys, "--config", str(config), str(tmp_seeds))
    assert code == 1
    assert lines[0].startswith("big.txt: ") and "2048" in lines[0]


def test_check_without_directory_uses_seeds_dir_setting(
    capsys: pytest.CaptureFixture[str], seeds_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDSERVER_SEEDS_DIR", str(seeds_dir))
    code, lines, _ = run_check(capsys)
    assert code == 0
    assert "5 files" in lines[-1]


def test_check_missing_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, lines, err = run_check(capsys, str(tmp_path / "missing"))
    assert code == 1
    assert lines == []
    assert "not a directory" in err


def test_check_with_bad_setting_prints_one_line(
    capsys: pytest.CaptureFixture[str], seeds_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDSERVER_MAX_FILE_BYTES", "tiny")
    code, lines, err = run_check(capsys, str(seeds_dir))
    assert code == 2
    assert lines == []
    assert len(err.strip().splitlines()) == 1
    assert "max_file_bytes" in err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main([])
    assert raised.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_python_dash_m_feedserver_check(seeds_dir: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "feedserver", "check", str(seeds_dir)],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "2 published" in result.stdout


# --- start-up checks of `serve` and `build` ---------------------------------------------

SERVE_DEADLINE = 120  # generous: a server that starts instead of stopping never exits


def run_feedserver(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m feedserver ARGS` in tmp_path until it exits on its own."""
    environment = {"PATH": "/usr/bin:/bin", "FEEDSERVER_STATS_DB": "", **env}
    return subprocess.run(
        [sys.executable, "-m", "feedserver", *args],
        cwd=tmp_path,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SERVE_DEADLINE,
        check=False,
    )


def test_serve_with_a_missing_seeds_directory_exits_with_one_line(tmp_path: Path) -> None:
    result = run_feedserver(tmp_path, "serve", "--port", "0", "--seeds", "sedes")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line == f"feedserver: seeds_dir sedes ({tmp_path / 'sedes'}): no such directory"


def test_serve_with_a_bad_setting_exits_with_one_line(tmp_path: Path, seeds_dir: Path) -> None:
    result = run_feedserver(
        tmp_path, "serve", "--port", "0", "--seeds", str(seeds_dir), FEEDSERVER_FEED_LIMIT="lots"
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "feed_limit" in line and "FEEDSERVER_FEED_LIMIT" in line


def test_build_with_a_missing_seeds_directory_exits_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    outdir = tmp_path / "site"
    missing = tmp_path / "no-seeds"
    code = main(["build", str(outdir), "--base-url", "https://feeds.test", "--seeds", str(missing)])
    assert code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"feedserver: build: seeds directory {missing} cannot be read")
    assert line.endswith(f"nothing written to {outdir}")
    assert not outdir.exists()


def test_serve_warns_once_about_an_unknown_variable(tmp_path: Path) -> None:
    result = run_feedserver(
        tmp_path, "serve", "--port", "0", "--seeds", "nowhere", FEEDSERVER_SEED_DIR="seeds"
    )
    assert result.returncode == 1
    warnings = [line for line in result.stderr.splitlines() if "FEEDSERVER_SEED_DIR" in line]
    assert len(warnings) == 1
    assert "did you mean FEEDSERVER_SEEDS_DIR?" in warnings[0]


def test_command_line_choices_are_arguments_not_environment_variables(
    capsys: pytest.CaptureFixture[str], seeds_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("site_title: Mine\n", "utf-8")
    before = dict(os.environ)
    code, _, _ = run_check(capsys, "--config", str(config), str(seeds_dir))
    assert code == 0
    outdir = tmp_path / "site"
    build = ["build", str(outdir), "--base-url", "https://feeds.test", "--seeds", str(seeds_dir)]
    assert main([*build, "--config", str(config)]) == 0
    assert dict(os.environ) == before


def serve_until_answered(tmp_path: Path, *args: str) -> servers.GunicornServer:
    """Start `python -m feedserver serve ARGS` on a free port with nothing of this
    environment; the server once it answers /healthz. The caller stops it."""
    port = servers.free_port()
    command = [sys.executable, "-m", "feedserver", "serve", "--port", str(port), *args]
    env = {"PATH": "/usr/bin:/bin", "FEEDSERVER_STATS_DB": ""}
    server = servers.launch(command, port, tmp_path / "serve.log", env)
    try:
        server.wait_ready(timeout=SERVE_DEADLINE)
    except Exception:
        server.stop()
        raise
    return server


@pytest.mark.parametrize("preload", [False, True], ids=["workers-load", "preload"])
def test_serve_hands_seeds_and_config_to_its_workers(
    tmp_path: Path, seeds_dir: Path, preload: bool
) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("site_title: From the command line\n", "utf-8")
    options = ["--workers", "1", "--seeds", str(seeds_dir), "--config", str(config)]
    server = serve_until_answered(tmp_path, *options, *(["--preload"] if preload else []))
    try:
        body = server.fetch("/feed.rss")[2]
        articles = json.loads(server.fetch("/healthz")[2])["articles"]
    finally:
        server.stop()
    assert b"<title>From the command line</title>" in body
    assert articles == 2


# --- `build` and its base URL -------------------------------------------------------------


def build_usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `feedserver build ARGS`, which must stop with a usage error: its stderr."""
    with pytest.raises(SystemExit) as raised:
        main(["build", *args])
    assert raised.value.code == 2
    return capsys.readouterr().err


def test_build_without_a_base_url_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], seeds_dir: Path, tmp_path: Path
) -> None:
    outdir = tmp_path / "site"
    err = build_usage_error(capsys, str(outdir), "--seeds", str(seeds_dir))
    usage, message = err.strip().splitlines()[0], err.strip().splitlines()[-1]
    assert usage.startswith("usage: feedserver build") and " --base-url URL " in usage
    assert "[--base-url" not in err  # shown as required
    assert message.startswith("feedserver build: error: --base-url URL is required")
    assert "base_url" in message and "FEEDSERVER_BASE_URL" in message
    assert not outdir.exists()


@pytest.mark.parametrize("where", ["config", "environment"])
def test_build_takes_the_base_url_from_the_settings(
    capsys: pytest.CaptureFixture[str],
    seeds_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    options = ["--seeds", str(seeds_dir)]
    if where == "config":
        config = tmp_path / "site.yaml"
        config.write_text("base_url: https://feeds.example.com\n", "utf-8")
        options += ["--config", str(config)]
    else:
        monkeypatch.setenv("FEEDSERVER_BASE_URL", "https://feeds.example.com")
    outdir = tmp_path / "site"
    assert main(["build", str(outdir), *options]) == 0
    assert b"https://feeds.example.com/feed.rss" in (outdir / "feed.rss").read_bytes()


def test_build_help_shows_the_base_url_as_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["build", "--help"])
    assert raised.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "usage: feedserver build [-h] --base-url URL " in text
    assert "required unless the base_url setting (config file or FEEDSERVER_BASE_URL)" in text


# --- help for every command and option --------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser of each subcommand, by name."""
    (choices,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(choices.choices)


def test_every_subcommand_and_option_has_help() -> None:
    parser = build_parser()
    (choices,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helped = {action.dest for action in choices._choices_actions if action.help}
    assert helped == set(subcommands(parser)) == {"serve", "build", "check"}
    for name, command in subcommands(parser).items():
        assert command.description, name
        text = command.format_help()
        for action in command._actions:
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help != argparse.SUPPRESS, where
            # An option that takes a value and has a default says which.
            if action.default not in (None, False, argparse.SUPPRESS):
                assert f"(default: {action.default})" in " ".join(text.split()), where


def test_top_level_help_describes_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("serve", "build", "check"):
        assert f"`{name}`" in " ".join(out.split())  # in the description
        assert re.search(rf"^\s+{name}\s+\S", out, re.MULTILINE), out  # and in the list


def test_serve_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 127.0.0.1)", "(default: 8000)", "(default: 2)"):
        assert default in out


# --- files withheld as unpublished ------------------------------------------------------

BUNDLED_UNPUBLISHED = [
    "001_db4b9f1a9b445236.txt",
    "002_c50e65090671e27a.txt",
    "003_e29929052b0126c7.txt",
]


def test_check_names_the_unpublished_bundled_seeds(
    capsys: pytest.CaptureFixture[str], seeds_dir: Path
) -> None:
    code, lines, _ = run_check(capsys, str(seeds_dir))
    assert code == 0
    *withheld, summary = lines
    assert withheld == [f"{name}: withheld: published is false" for name in BUNDLED_UNPUBLISHED]
    assert "3 withheld as unpublished" in summary


@pytest.mark.parametrize(
    ("fields", "omit", "reason"),
    [
        ({"published": False}, (), "published is false"),
        ({}, ("published",), "published is missing"),
        ({"published": "true"}, (), "published is not the boolean true"),
        ({"published": "yes"}, (), "published is not the boolean true"),
    ],
    ids=["false", "missing", "string-true", "yes"],
)
def test_check_reports_each_unpublished_file_once(
    capsys: pytest.CaptureFixture[str],
    tmp_seeds: Path,
    write_seed: Callable[..., Path],
    write_file: Callable[..., Path],
    fields: dict[str, object],
    omit: tuple[str, ...],
    reason: str,
) -> None:
    write_seed("served.txt")
    write_seed("sub/held.md", omit=omit, **fields)
    write_file("yes.yaml", "".join(f"{line}\n" for line in YES_LINES))
    code, lines, _ = run_check(capsys, str(tmp_seeds))
    assert code == 0  # withheld files are not unusable
    withheld = [line for line in lines if ": withheld: " in line]
    assert withheld == [f"sub/held.md: withheld: {reason}", YES_WITHHELD]
    assert not any(line.startswith("served.txt: ") for line in lines)
    assert "2 withheld as unpublished" in lines[-1]
    # A plain `false` is the author's choice, not a problem; anything else is also warned of.
    problems = 1 if reason == "published is false" else 2
    assert f"{problems} problems (0 files unusable)" in lines[-1]


# A whole-YAML seed whose `published: yes` YAML 1.1 would read as true: withheld here.
YES_LINES = [
    "title: Yes is not true",
    "webUrl: https://example.com/articles/yes",
    "publishedDateTime: 2020-05-01T12:00:00Z",
    "published: yes",
]
YES_WITHHELD = "yes.yaml: withheld: published is not the boolean true"


def test_an_unusable_file_is_skipped_not_withheld(
    capsys: pytest.CaptureFixture[str], tmp_seeds: Path, write_file: Callable[..., Path]
) -> None:
    write_file("broken.txt", "---\ntitle: [unclosed\npublished: false\n---\n")
    code, lines, _ = run_check(capsys, str(tmp_seeds))
    assert code == 1
    assert [line.split(": ")[1] for line in lines[:-1]] == ["skipped"]
    assert "0 withheld as unpublished" in lines[-1]
