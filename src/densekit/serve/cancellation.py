"""Work that stops when its request ends.

A request's blocking work runs on a worker thread that the event loop abandons when the request
times out or its client goes away; the thread itself cannot be stopped. What it can do is stop
asking the model for more: each request carries a :class:`Cancellation` (a context variable of
its worker thread), the micro-batcher drops the request's queued pieces when it fires, and the
thread ends after the one batch already running.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import anyio
import anyio.to_thread

from densekit.errors import DensekitError

T = TypeVar("T")

_CURRENT: contextvars.ContextVar[Cancellation | None] = contextvars.ContextVar(
    "densekit_cancellation", default=None
)


class RequestCancelledError(DensekitError):
    """The request this work belonged to has ended; its remaining work was dropped."""


class RequestTimeoutError(DensekitError):
    """A request ran past the server's timeout."""


class ClientGoneError(DensekitError):
    """The client closed its connection before the answer was ready."""


class Cancellation:
    """A flag that runs its callbacks once, on the first :meth:`cancel`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when cancelled (now, if already); returns its unregistration."""
        with self._lock:
            if not self._cancelled:
                key = self._next
                self._next += 1
                self._callbacks[key] = callback
                return lambda: self._forget(key)
        callback()
        return lambda: None

    def _forget(self, key: int) -> None:
        with self._lock:
            self._callbacks.pop(key, None)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make this the current thread's cancellation while the block runs."""
        token = _CURRENT.set(self)
        try:
            yield
        finally:
            _CURRENT.reset(token)


def current_cancellation() -> Cancellation | None:
    """The cancellation of the request whose work this thread is doing, if any."""
    return _CURRENT.get()


async def run_cancellable(
    work: Callable[[], T],
    *,
    limiter: anyio.CapacityLimiter,
    timeout_s: float,
    disconnected: Callable[[], Awaitable[None]],
) -> T:
    """``work`` on a worker thread, given up (and cancelled) past ``timeout_s`` or as soon as
    ``disconnected`` returns; raises :class:`RequestTimeoutError` or :class:`ClientGoneError`.

    The cancellation fires before this returns, so a client that got the timeout's answer
    knows the work's remaining pieces are already dropped.
    """
    cancellation = Cancellation()

    def run() -> T:
        with cancellation.active():
            return work()

    finished: list[T] = []
    failure: list[Exception] = []
    gone = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal gone
            await disconnected()
            gone = True
            group.cancel_scope.cancel()

        group.start_soon(watch)
        with anyio.move_on_after(timeout_s):
            try:
                finished.append(
                    await anyio.to_thread.run_sync(run, limiter=limiter, abandon_on_cancel=True)
                )
            except Exception as exc:  # re-raised below, outside the task group
                failure.append(exc)
        group.cancel_scope.cancel()
    if failure:
        raise failure[0]
    if finished:
        return finished[0]
    cancellation.cancel()
    if gone:
        raise ClientGoneError("the client closed the connection; its work was dropped")
    raise RequestTimeoutError(f"the request took longer than {timeout_s:g} s; retry")
