"""Run an iterator in a background thread so decoding overlaps encoding."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.1


class _Done:
    """Marks the end of the produced items."""


class _Failed:
    """Carries the producer's exception to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetcher(Generic[T]):
    """Items of ``source`` produced ahead of time (at most ``depth``) by one thread."""

    def __init__(self, source: Iterator[T], depth: int) -> None:
        self._queue: queue.Queue[T | _Done | _Failed] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(source,), daemon=True)
        self._thread.start()

    def _put(self, item: T | _Done | _Failed) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, source: Iterator[T]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(_Done())
        except BaseException as exc:  # re-raised in the consumer's thread
            self._put(_Failed(exc))

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop the producer and wait for its thread."""
        self._stop.set()
        self._thread.join()


@contextmanager
def prefetched(source: Iterator[T], depth: int = 12) -> Iterator[Iterator[T]]:
    """Iterate ``source`` through a :class:`Prefetcher`, stopping its thread on exit."""
    prefetcher = Prefetcher(source, depth)
    try:
        yield iter(prefetcher)
    finally:
        prefetcher.close()
