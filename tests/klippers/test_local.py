"""The local engine's scheduling rules (the runs themselves are in test_pipeline.py)."""

from __future__ import annotations

import pytest

from klippers.local import RetryPolicy, encoder_threads


@pytest.mark.parametrize(
    ("cores", "workers", "threads"),
    [
        (2, 1, 0),  # one render: x264 takes its own 1.5 threads per core
        (2, 2, 2),
        (8, 3, 4),
        (16, 2, 12),
        (16, 16, 2),
        (4, 8, 2),  # never fewer than 2: x264's frame threads overlap its own stalls
    ],
)
def test_side_by_side_renders_share_the_encoder_threads(
    cores: int, workers: int, threads: int
) -> None:
    assert encoder_threads(cores, workers) == threads


def test_retry_policy_matches_the_state_machine() -> None:
    assert RetryPolicy().delays() == [30.0, 60.0]
