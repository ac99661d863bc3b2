"""`feedserver build OUTDIR`: the static export, byte-identical to the server, incremental
and atomic."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from feedserver import cli
from feedserver.export import (
    BROWSER,
    MANIFEST,
    REDIRECTS_FILE,
    BuildRefused,
    build_site,
    plain_relative,
)
from feedserver.render import RENDERERS, FeedDocument

from .conftest import TEST_BASE_URL, GunicornServer

EXPECTED = {
    "index.html",
    "feed.rss",
    "feed.atom",
    "feed.json",
    "topics.json",
    "providers.json",
    "feeds.opml",
    "static/style.css",
    "static/feed-icon.png",
    "static/favicon.svg",
    "favicon.ico",
    "topics/index.html",
    "providers/index.html",
    "rss.xml",
    "feed.xml",
    "index.xml",
    "atom.xml",
    REDIRECTS_FILE,
    "feed.rss.html",
    "feed.atom.html",
    "feed.json.html",
    *(
        f"{kind}/{key}{suffix}"
        for kind, keys in (
            ("topics", ("ai", "microsoft-ai")),
            ("providers", ("hothardware.com", "techcrunch.com")),
        )
        for key in keys
        for suffix in (
            ".rss",
            ".atom",
            ".json",
            "/index.html",
            ".rss.html",
            ".atom.html",
            ".json.html",
        )
    ),
}
# Files named for other software's feed URLs hold the canonical feed's bytes.
ALIAS_FILES = {"rss.xml": "/feed.rss", "feed.xml": "/feed.rss", "index.xml": "/feed.rss"}
ALIAS_FILES["atom.xml"] = "/feed.atom"


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and path.name != MANIFEST
    }


def url_path(name: str) -> tuple[str, dict[str, str]]:
    """The request whose response a file of the export holds."""
    if name == "index.html":
        return "/", {}
    if name in ALIAS_FILES:
        return ALIAS_FILES[name], {}
    if name.endswith((".rss.html", ".atom.html", ".json.html")):
        return "/" + name.removesuffix(".html"), BROWSER  # a feed's preview for browsers
    return "/" + name.removesuffix("/index.html"), {}


@pytest.fixture
def app(make_app: Callable[..., Flask], seeds_dir: Path) -> Flask:
    return make_app(seeds_dir, base_url=TEST_BASE_URL)


def test_build_writes_every_route_byte_identical_to_the_server(
    app: Flask, tmp_path: Path, make_app: Callable[..., Flask], seeds_dir: Path
) -> None:
    out = tmp_path / "site"
    report = build_site(app, out)
    written = files_under(out)
    assert set(written) == EXPECTED
    assert (report.files, report.written, report.removed) == (len(EXPECTED), len(EXPECTED), 0)
    server = make_app(seeds_dir, base_url=TEST_BASE_URL).test_client()  # a separate app
    for name, body in written.items():
        if name == REDIRECTS_FILE:
            continue
        path, headers = url_path(name)
        assert server.get(path, headers=headers).get_data() == body, name
    # What a Netlify or Cloudflare Pages site redirects: the names the server redirects.
    for line in written[REDIRECTS_FILE].decode().splitlines():
        source, target, status = line.split()
        response = server.get(source)
        assert (response.status_code, status) == (301, "301")
        assert response.headers["Location"] == f"{TEST_BASE_URL}{target}"
    assert "/rss.xml /feed.rss 301" in written[REDIRECTS_FILE].decode()


def test_build_matches_a_running_gunicorn(
    tmp_path: Path, seeds_dir: Path, start_gunicorn: Callable[..., GunicornServer]
) -> None:
    server = start_gunicorn(seeds_dir, env={"FEEDSERVER_BASE_URL": TEST_BASE_URL})
    out = tmp_path / "site"
    assert (
        cli.main(["build", str(out), "--seeds", str(seeds_dir), "--base-url", TEST_BASE_URL]) == 0
    )
    for name, body in files_under(out).items():
        if name == REDIRECTS_FILE:
            continue
        path, headers = url_path(name)
        with urllib.request.urlopen(
            urllib.request.Request(server.url + path, headers=headers), timeout=10
        ) as response:
            assert (response.status, response.read()) == (200, body), name


def test_second_build_rewrites_only_changed_files_and_removes_stale_ones(
    app: Flask, tmp_path: Path, seeds_dir: Path
) -> None:
    out = tmp_path / "site"
    build_site(app, out)
    (out / "notes.txt").write_text("not ours")  # a file the build did not make stays
    before = files_under(out)
    inodes = {name: (out / name).stat().st_ino for name in before}
    again = build_site(app, out)
    assert (again.written, again.unchanged, again.removed) == (0, len(EXPECTED), 0)

    # TechCrunch's only article is unpublished: its files go, and the feeds it was in change.
    techcrunch = next(seeds_dir.glob("004_*"))
    techcrunch.write_text(techcrunch.read_text().replace("published: true", "published: false"))
    stat = techcrunch.stat()
    os.utime(techcrunch, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    app.extensions["feedserver.store"].reload()
    report = build_site(app, out)
    after = files_under(out)
    gone = {name for name in before if "techcrunch.com" in name}
    assert len(gone) == 7 and not gone & set(after)
    assert report.removed == 7
    assert "notes.txt" in after
    changed = {name for name in after if name in before and after[name] != before[name]}
    assert report.written == len(changed) > 0
    for name in after.keys() - {"notes.txt"}:
        rewritten = (out / name).stat().st_ino != inodes[name]
        assert rewritten == (name in changed), name  # renamed into place, or left alone
    assert not list(out.rglob(".tmp-*"))
    assert not (out / "providers" / "techcrunch.com").exists()


def test_build_needs_a_base_url(tmp_path: Path, seeds_dir: Path) -> None:
    # A usage error, as argparse's own (tests/test_cli.py checks its words).
    with pytest.raises(SystemExit) as raised:
        cli.main(["build", str(tmp_path / "site"), "--seeds", str(seeds_dir)])
    assert raised.value.code == 2
    assert not (tmp_path / "site").exists()


# --- a build never destroys a good site -------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root (the manifest too) with its bytes and modification time."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file()
    }


def build_cli(out: Path, seeds: Path, *extra: str) -> int:
    return cli.main(["build", str(out), "--seeds", str(seeds), "--base-url", TEST_BASE_URL, *extra])


@pytest.fixture
def built(tmp_path: Path, seeds_dir: Path) -> Path:
    """A good site built from the bundled seeds."""
    out = tmp_path / "site"
    assert build_cli(out, seeds_dir) == 0
    return out


@pytest.mark.parametrize("how", ["missing", "a file", "renamed"])
def test_an_unreadable_seeds_directory_changes_nothing(
    built: Path, seeds_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    before = snapshot(built)
    capsys.readouterr()
    if how == "missing":
        seeds = tmp_path / "no-such-seeds"
    elif how == "a file":
        seeds = tmp_path / "seeds-file"
        seeds.write_text("not a directory")
    else:
        seeds = seeds_dir
        seeds_dir.rename(tmp_path / "moved")
    assert build_cli(built, seeds) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(seeds) in err and "nothing written" in err, err
    assert snapshot(built) == before


def test_a_directory_that_disappears_before_the_build_changes_nothing(
    built: Path, app: Flask, seeds_dir: Path
) -> None:
    before = snapshot(built)
    shutil.rmtree(seeds_dir)
    app.extensions["feedserver.store"].reload()  # as `build --watch` does
    with pytest.raises(BuildRefused, match="cannot be read"):
        build_site(app, built)
    assert snapshot(built) == before


def unpublish_all(seeds: Path) -> None:
    for path in seeds.iterdir():
        if path.is_file():
            path.write_text(path.read_text().replace("published: true", "published: false"))


def test_a_build_that_would_remove_every_article_is_refused(
    built: Path, seeds_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(built)
    unpublish_all(seeds_dir)
    capsys.readouterr()
    assert build_cli(built, seeds_dir) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--allow-empty" in err, err
    assert snapshot(built) == before
    # Insisting builds the empty site: every topic and provider file goes.
    assert build_cli(built, seeds_dir, "--allow-empty") == 0
    left = {str(path.relative_to(built)) for path in built.rglob("*") if path.is_file()}
    assert not {name for name in left if name.startswith(("topics/", "providers/"))} - {
        "topics/index.html",
        "providers/index.html",
    }
    assert json.loads((built / "feed.json").read_bytes())["items"] == []


def test_an_empty_site_may_be_built_first_and_rebuilt(tmp_path: Path, tmp_seeds: Path) -> None:
    out = tmp_path / "site"
    assert build_cli(out, tmp_seeds) == 0  # nothing to lose: no refusal
    assert build_cli(out, tmp_seeds) == 0


@pytest.mark.parametrize(
    "entry",
    [
        "../outside.txt",
        "../../outside.txt",
        "topics/../../outside.txt",
        "OUTSIDE_ABSOLUTE",
        "./../outside.txt",
        "topics/..",
        "..",
        "..\\outside.txt",
        "topics\\..\\..\\outside.txt",
        "feed.rss\x00../outside.txt",
        "link/outside.txt",
    ],
)
def test_manifest_entries_outside_outdir_are_never_deleted(
    built: Path, app: Flask, tmp_path: Path, entry: str, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (built / "link").symlink_to(tmp_path)  # a folder inside OUTDIR that leads outside
    entry = entry.replace("OUTSIDE_ABSOLUTE", str(outside))
    with (built / MANIFEST).open("a", encoding="utf-8") as manifest:
        manifest.write(entry + "\n")
    report = build_site(app, built)
    assert outside.read_text() == "keep me"
    assert report.removed == 0 and not report.failed
    listed = (built / MANIFEST).read_text(encoding="utf-8").split("\n")
    if plain_relative(entry):  # plain, but it resolves outside: listed still, never deleted
        assert entry == "link/outside.txt" and entry in listed
        assert "link is a symbolic link; not followed" in caplog.text
    else:
        assert entry not in listed
        assert "ignoring entry" in caplog.text


@pytest.mark.parametrize("entry", ["a/./b", "a//b", "/", "", " \t"])
def test_plain_relative_refuses_odd_entries(entry: str) -> None:
    assert not plain_relative(entry)


@pytest.mark.parametrize("entry", ["feed.rss", "topics/ai/index.html", "providers/a.b.c.rss"])
def test_plain_relative_accepts_the_builds_own_names(entry: str) -> None:
    assert plain_relative(entry)


def explode_for(title: str, renderer: Callable[[FeedDocument], bytes]) -> Callable[..., bytes]:
    def render(document: FeedDocument) -> bytes:
        if title in document.title:
            raise RuntimeError("renderer broke")
        return renderer(document)

    return render


def test_a_failing_route_is_reported_and_skipped_and_its_last_file_kept(
    built: Path,
    seeds_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = (built / "topics" / "ai.atom").read_bytes()
    monkeypatch.setitem(RENDERERS, "atom", explode_for("Microsoft AI", RENDERERS["atom"]))
    # Something changed as well, so every other file is rewritten.
    techcrunch = next(seeds_dir.glob("004_*"))
    techcrunch.write_text(techcrunch.read_text().replace("published: true", "published: false"))
    capsys.readouterr()
    assert build_cli(built, seeds_dir) == 1
    captured = capsys.readouterr()
    failures = [line for line in captured.err.splitlines() if line.startswith("feedserver: build")]
    assert failures == ["feedserver: build: /topics/microsoft-ai.atom: answered 500"]
    assert "1 failed" in captured.out
    assert (built / "topics" / "ai.atom").read_bytes() != old  # the others were rebuilt
    assert (built / "topics" / "microsoft-ai.atom").is_file()  # the last good copy stays
    assert "topics/microsoft-ai.atom" in (built / MANIFEST).read_text()
    assert not (built / "providers" / "techcrunch.com.rss").exists()


def test_a_file_that_cannot_be_written_is_reported_and_skipped(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "site"
    (out / "feed.rss" / "in-the-way").mkdir(parents=True)  # a folder where a file goes
    report = build_site(app, out)
    assert len(report.failed) == 1
    assert report.failed[0].startswith("/feed.rss: cannot write feed.rss:")
    assert report.files == len(EXPECTED) - 1
    assert (out / "feed.atom").is_file() and (out / "topics" / "ai.rss").is_file()
    assert not list(out.rglob(".tmp-*"))


# --- symbolic links planted inside OUTDIR, and an OUTDIR that is no folder ------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside OUTDIR with one file, which no build may change."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep me")
    return folder


def outside_untouched(folder: Path) -> bool:
    return {p.name: p.read_text() for p in folder.iterdir()} == {"keep.txt": "keep me"}


def test_a_folder_link_inside_outdir_is_never_written_through(
    built: Path, seeds_dir: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(built / "topics")
    (built / "topics").symlink_to(outside)
    capsys.readouterr()
    assert build_cli(built, seeds_dir) == 1
    assert outside_untouched(outside)
    err = capsys.readouterr().err
    assert "/topics/ai.rss: cannot write topics/ai.rss: topics is a symbolic link" in err
    assert (built / "feed.rss").is_file() and (built / "topics").is_symlink()


def test_a_file_link_inside_outdir_is_replaced_not_written_through(
    built: Path, seeds_dir: Path, outside: Path
) -> None:
    for name in ("feed.rss", "topics/ai.atom", MANIFEST):
        (built / name).unlink()
        (built / name).symlink_to(outside / "keep.txt")
    assert build_cli(built, seeds_dir) == 0
    assert outside_untouched(outside)
    for name in ("feed.rss", "topics/ai.atom", MANIFEST):
        assert (built / name).is_file() and not (built / name).is_symlink()
    assert (built / "feed.rss").read_bytes().startswith(b"<?xml")


def test_a_stale_file_replaced_by_a_link_is_removed_without_following_it(
    built: Path, seeds_dir: Path, outside: Path
) -> None:
    (built / "topics" / "ai.rss").unlink()
    (built / "topics" / "ai.rss").symlink_to(outside / "keep.txt")
    (built / "gone").symlink_to(outside)  # a folder link: a stale entry below it is kept
    with (built / MANIFEST).open("a", encoding="utf-8") as manifest:
        manifest.write("gone/keep.txt\n")
    for path in seeds_dir.iterdir():  # every AI article leaves: its topic's files go
        text = path.read_text()
        if "- AI" in text:
            path.write_text(text.replace("- AI\n", "- Other\n"))
    assert build_cli(built, seeds_dir) == 0
    assert outside_untouched(outside)
    assert not os.path.lexists(built / "topics" / "ai.rss")
    assert "gone/keep.txt" in (built / MANIFEST).read_text()


@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_an_outdir_that_is_no_folder_is_one_line_and_exit_1(
    tmp_path: Path, seeds_dir: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    out = tmp_path / "site"
    if kind == "file":
        out.write_text("not a folder")
    else:
        out.symlink_to(tmp_path / "nowhere")
    assert build_cli(out, seeds_dir) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"feedserver: build: {out} "), err
    assert "nothing written" in err or "cannot be made" in err
    if kind == "file":
        assert out.read_text() == "not a folder"
