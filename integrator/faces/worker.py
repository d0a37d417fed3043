"""The gunicorn worker: gthread that takes a new connection only while one of its threads is free.

All workers of a master poll one listening socket, and with plain gthread whichever wakes first accepts: keep-alive
clients that connect together all land on one worker (the lookup bench saw 15 of 16 connections on one) and stay
there, while the other workers idle. This worker stops accepting while every one of its threads is busy, so new
connections go to a worker with a free thread; kept-alive connections are served as before.
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class BalancedThreadWorker(ThreadWorker):
    _busy = 0  # requests in this worker's thread pool (counted on the worker's main thread only)
    _limit = 1000

    @property  # type: ignore[override]
    def worker_connections(self) -> int:
        """gthread accepts while its connections are fewer than this: none while all threads are busy."""
        return self._limit if self._busy < self.cfg.threads else 0

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._limit = value

    def enqueue_req(self, conn: Any) -> None:
        self._busy += 1
        super().enqueue_req(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        self._busy -= 1
        super().finish_request(conn, fs)
