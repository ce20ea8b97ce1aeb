"""Serving until told to stop, and stopping quietly: uvicorn's servers and worker supervisor,
with the stop a signal asks for treated as the normal end it is.

uvicorn shuts a server down gracefully on SIGINT or SIGTERM, then raises the signal again
so that the process ends "as the signal meant": a ``KeyboardInterrupt`` traceback from
each worker on Ctrl-C, or death by SIGTERM. Here the server remembers the signal instead
(:attr:`QuietServer.stopped_by`) and returns, so the CLI can finish in order (workers,
then hosts, then an embedded Ray) and exit 0 with one line. :func:`run_workers` runs
uvicorn's supervisor with workers that are quiet the same way.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.supervisors import multiprocess


class QuietServer(uvicorn.Server):
    """A uvicorn server that, stopped by a signal, records it rather than raising it again."""

    stopped_by: int | None = None
    """The signal that stopped the server (``None``: it stopped by itself, or not yet)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            if self._captured_signals:
                self.stopped_by = self._captured_signals[0]
            # What is left here is raised again once uvicorn's handlers are restored.
            self._captured_signals.clear()

    def stop(self) -> None:
        """Ask the server to shut down gracefully (from the event loop's thread)."""
        self.should_exit = True


class _QuietWorker(multiprocess.Process):
    """uvicorn's worker process, serving with a :class:`QuietServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = QuietServer(config=self.config)
        return self._server


def run_server(server: QuietServer, listener: socket.socket) -> None:
    """Serve on ``listener`` in this process until the server stops."""
    server.run(sockets=[listener])


def run_workers(config: uvicorn.Config) -> int | None:
    """Serve with ``config.workers`` quiet worker processes under uvicorn's supervisor, which
    binds the port first and restarts a worker that dies; a SIGINT or SIGTERM stops the
    workers (each shuts down gracefully) and then this. The signal that stopped it."""
    stopped: list[int] = []
    listener = config.bind_socket()
    supervisor = multiprocess.Multiprocess(config, sockets=[listener])
    # The supervisor queues signals and acts on them in its loop; note which one came.
    queue_signal = supervisor.signal_queue.append

    def note(sig: int, frame: Any) -> None:
        stopped.append(sig)
        queue_signal(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        if threading.current_thread() is threading.main_thread():
            signal.signal(sig, note)
    # uvicorn makes each worker (at start and on restart) from the module's ``Process``.
    made = multiprocess.Process
    multiprocess.Process = _QuietWorker  # type: ignore[misc]
    try:
        supervisor.run()
    finally:
        multiprocess.Process = made  # type: ignore[misc]
        listener.close()
    return stopped[0] if stopped else None


def signal_name(sig: int) -> str:
    return signal.Signals(sig).name
