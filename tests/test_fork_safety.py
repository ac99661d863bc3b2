"""A fork while another thread writes a log line: the child can still log (fork_safety)."""

from __future__ import annotations

import logging
import os
import threading
import time

from feedserver.fork_safety import hold_log_handlers_across_forks


class SlowStream:
    """A stream with a lock of its own that logging does not renew in a child, as a real
    file's buffer has; each write holds it a while."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writing = threading.Event()

    def write(self, text: str) -> None:
        with self.lock:
            self.writing.set()
            time.sleep(0.5)

    def flush(self) -> None:
        pass


def child_can_log(logger: logging.Logger, stream: SlowStream) -> bool:
    """Fork while another thread is inside a write; whether the child logs within 5 s."""
    writer = threading.Thread(target=logger.warning, args=("from the parent's thread",))
    writer.start()
    assert stream.writing.wait(5)
    pid = os.fork()
    if pid == 0:  # the child: log once, then leave without the parent's exit handlers
        logger.warning("from the child")
        os._exit(0)
    writer.join()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return False


def test_a_fork_waits_for_the_log_line_under_way() -> None:
    stream = SlowStream()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.fork_safety")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        hold_log_handlers_across_forks()
        hold_log_handlers_across_forks()  # once is enough; twice changes nothing
        assert child_can_log(logger, stream)
    finally:
        logger.removeHandler(handler)
