"""Progress events for the benchmarks: nothing is shown, and a failed short stops the run."""

from __future__ import annotations


class QuietEvents:
    """:class:`klippers.local.Events` that ignore progress and stop on a short's retry (a
    benchmark times only runs where every short renders at the first try)."""

    def stage(self, name: str) -> None:
        pass

    def stage_progress(self, done: float, total: float) -> None:
        pass

    def shorts_planned(self, count: int) -> None:
        pass

    def short_progress(self, segment: int, done: int, total: int) -> None:
        pass

    def short_finished(self, segment: int, reused: bool) -> None:
        pass

    def short_retrying(self, segment: int, error: str, delay: float) -> None:
        raise SystemExit(f"short {segment} failed during the benchmark: {error}")
