"""Decode ahead: run a generator in a thread of its own, a few items ahead of the one consuming them.

PyAV releases the GIL while it demuxes and decodes, so the next frames decode while the consumer's
Python and NumPy work runs on the last one, instead of one after the other.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Generator, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class _End:
    def __init__(self, error: BaseException | None = None):
        self.error = error


class ReadAhead(Generic[T]):
    """Iterate ``items`` (a generator) in a daemon thread, at most ``depth`` items ahead.

    Iterating this gives the same items in the same order; an exception ``items`` raises is raised
    here, after the items before it. ``close()`` (or leaving the ``with``) stops the thread and waits
    for it: the step under way finishes, then the generator is closed in the thread. Whatever ``items``
    reads (a container, a decoder) must stay open until then, and only ``items`` may use it meanwhile.
    """

    def __init__(self, items: Generator[T], depth: int = 4):
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._items, self._depth = items, depth
        # A consumer waiting for items is woken once two are ready (or at the end), not for each one: when
        # decoding is the slower side, each wake-up took the GIL from the decoder at its next packet.
        self._wake_at = min(2, depth)
        self._ready: deque = deque()  # items, then an _End
        self._changed = threading.Condition()
        self._stopping = False
        # In a copy of the caller's context: the reads it makes keep the step's deadline, tracing and
        # (on the local stack) its invocation.
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._produce,),
                                        name="vidpipe-read-ahead", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        with self._changed:
            while not self._ready:
                if self._stopping:
                    raise StopIteration
                self._changed.wait()
            item = self._ready.popleft()
            if isinstance(item, _End):
                self._stopping = True  # later calls stop at once
            self._changed.notify()
        if isinstance(item, _End):
            if item.error is not None:
                raise item.error
            raise StopIteration
        return item

    def close(self) -> None:
        with self._changed:
            self._stopping = True
            self._ready.clear()
            self._changed.notify()
        self._thread.join()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _produce(self) -> None:
        end = _End()
        try:
            for item in self._items:
                with self._changed:
                    while len(self._ready) >= self._depth and not self._stopping:
                        self._changed.wait()
                    if self._stopping:
                        return
                    self._ready.append(item)
                    if len(self._ready) >= self._wake_at:
                        self._changed.notify()
        except BaseException as exc:  # raised in the consumer's thread
            end = _End(exc)
        finally:
            self._items.close()
        with self._changed:
            if not self._stopping:
                self._ready.append(end)
                self._changed.notify()
