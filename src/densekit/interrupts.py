"""Ctrl-C that waits for the unit of work in flight, so what was done so far stays usable."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class DeferredInterrupt:
    """Set by the first Ctrl-C; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def check(self) -> None:
        """Raise the deferred KeyboardInterrupt at a safe point."""
        if self.requested:
            raise KeyboardInterrupt


@contextmanager
def deferred_interrupt(on_request: str | None = None) -> Iterator[DeferredInterrupt]:
    state = DeferredInterrupt()
    if threading.current_thread() is not threading.main_thread():
        yield state  # signal handlers live in the main thread only
        return
    previous = signal.getsignal(signal.SIGINT)

    def handle(signum: int, frame: FrameType | None) -> None:
        if state.requested:
            raise KeyboardInterrupt
        state.requested = True
        if on_request:
            print(on_request, flush=True)

    signal.signal(signal.SIGINT, handle)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)
