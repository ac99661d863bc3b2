"""How feedserver runs under gunicorn: gevent workers, so a slow client holds a greenlet, not
a process or a thread, and the time limits that keep any one client from holding a
connection for ever. Both `feedserver serve` and config/gunicorn.conf.py take these values.

gunicorn's gevent worker already bounds the time to receive each request head (request line
and headers) by `keepalive` seconds, the first request of a connection included; this worker
adds a limit on every single read and write once a request is under way (a client that stops
reading its response, or trickles a request body), which gunicorn leaves unbounded."""

from __future__ import annotations

import contextlib
import resource
import socket
from typing import Any

from gunicorn.workers.ggevent import GeventWorker

WORKER_CLASS = "feedserver.worker.SlowClientSafeWorker"
# Open connections per worker: slow or idle ones cost a greenlet and a file descriptor each.
WORKER_CONNECTIONS = 1000
# Seconds a client has to send a whole request head, and to send the next one on a kept-alive
# connection: a client trickling header lines is cut off after this.
KEEPALIVE = 5
# Seconds any single read or write of a connection may wait once a request is being handled.
SOCKET_TIMEOUT = 30
# gunicorn's worker heartbeat: a gevent worker misses it only when its event loop is stuck.
# A first load of 100,000 seeds takes about a minute, hence the margin.
TIMEOUT = 300
GRACEFUL_TIMEOUT = 10
# File descriptors a worker needs besides its client connections (logs, seeds, listeners).
SPARE_DESCRIPTORS = 64


def gunicorn_settings() -> dict[str, Any]:
    """The gunicorn settings both ways of running feedserver share."""
    return {
        "worker_class": WORKER_CLASS,
        "worker_connections": WORKER_CONNECTIONS,
        "keepalive": KEEPALIVE,
        "timeout": TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
    }


def raise_descriptor_limit(needed: int) -> int:
    """Raise this process's soft limit on open files towards `needed` (never past the hard
    limit, never lowering it); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        return wanted
    return soft


class SlowClientSafeWorker(GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker with a per-operation socket timeout on every connection."""

    def init_process(self) -> None:
        """Make room for worker_connections open sockets before serving."""
        limit = raise_descriptor_limit(self.worker_connections + SPARE_DESCRIPTORS)
        if limit < self.worker_connections + SPARE_DESCRIPTORS:
            self.log.warning(
                "open-file limit %d is below worker_connections (%d) + %d: raise `ulimit -n`",
                limit,
                self.worker_connections,
                SPARE_DESCRIPTORS,
            )
        super().init_process()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        """Serve one connection; a read or write stalled past SOCKET_TIMEOUT ends it."""
        # gunicorn's own handle() puts the socket in blocking mode with no timeout at all.
        client.settimeout(SOCKET_TIMEOUT)
        self._idle_connections().add(client)
        try:
            super(GeventWorker, self).handle(listener, client, addr)
        finally:
            self._idle_connections().discard(client)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        """Serve one request; the connection is idle again after it."""
        idle = self._idle_connections()
        idle.discard(sock)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            if self.alive:
                idle.add(sock)

    def handle_exit(self, sig: Any, frame: Any) -> None:
        """Leave (SIGTERM, as the master sends when it replaces its workers after a reload):
        close the kept-alive connections that wait for a request now, so that a proxy's
        next request goes to a current worker rather than get one more answer from this
        worker's catalog; requests under way finish as usual."""
        super().handle_exit(sig, frame)
        for client in list(self._idle_connections()):
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)

    def _idle_connections(self) -> set[Any]:
        """The connections between two requests (or before their first)."""
        idle: set[Any] | None = self.__dict__.get("_idle")
        if idle is None:
            idle = self.__dict__["_idle"] = set()
        return idle
