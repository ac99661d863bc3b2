"""CI's serve smoke run: start a server the way the README says, fetch a feed and a page.

Usage: python3 .ci/smoke.py LABEL PORT -- COMMAND...

COMMAND runs under bash in the current folder, in a process group of its own. The run passes
when, within the start-up time, /topics/ai.rss answers 200 with an RSS document holding at
least one item and / answers 200 with an HTML page; then the server is stopped by SIGTERM
and must exit within its grace time, with no traceback in what it printed. Only the standard
library is used: this runs before (and apart from) any venv.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

START_SECONDS = 900  # the command installs the project first
STOP_SECONDS = 60


def fetch(port: int, path: str) -> tuple[int, str, bytes]:
    """Status, content type and body of one GET."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"User-Agent": "feedserver-ci-smoke/1"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def wait_until_up(port: int, server: subprocess.Popen[bytes]) -> None:
    """Return once the server answers; raise when it exits or takes too long."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the command exited with {server.returncode} before serving")
        try:
            fetch(port, "/healthz")
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"nothing answered on port {port} within {START_SECONDS} s")


def check_feed_and_page(port: int) -> None:
    """The feed parses as RSS with items; the home page is HTML."""
    status, kind, body = fetch(port, "/topics/ai.rss")
    if status != 200 or "xml" not in kind:
        raise RuntimeError(f"/topics/ai.rss answered {status} {kind}: {body[:200]!r}")
    items = ET.fromstring(body).findall("./channel/item")
    if not items:
        raise RuntimeError("/topics/ai.rss has no item")
    status, kind, body = fetch(port, "/")
    if status != 200 or not kind.startswith("text/html") or b"<html" not in body:
        raise RuntimeError(f"/ answered {status} {kind}: {body[:200]!r}")
    print(f"  /topics/ai.rss: 200, {len(items)} items; /: 200, {len(body)} bytes")


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group and wait for it to exit."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            raise RuntimeError(
                f"the server did not stop within {STOP_SECONDS} s of SIGTERM"
            ) from None


def main(argv: list[str]) -> int:
    """Run one smoke check; 0 when it passed."""
    label, port_text, separator, *command = argv
    if separator != "--" or not command:
        print(__doc__, file=sys.stderr)
        return 2
    port = int(port_text)
    print(f"smoke: {label}: {' '.join(command)}", flush=True)
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            ["bash", "-c", " ".join(command)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        failure = ""
        try:
            wait_until_up(port, server)
            check_feed_and_page(port)
        except (RuntimeError, OSError, ET.ParseError) as error:
            failure = str(error)
        finally:
            try:
                stop(server)
            except RuntimeError as error:
                failure = failure or str(error)
        log.seek(0)
        printed = log.read().decode("utf-8", "replace")
    if not failure and ("Traceback" in printed or "Exception ignored" in printed):
        failure = "the server printed a traceback"
    if failure:
        print(f"smoke: {label}: FAILED: {failure}\n--- what it printed ---\n{printed[-20000:]}")
        return 1
    print(f"smoke: {label}: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
