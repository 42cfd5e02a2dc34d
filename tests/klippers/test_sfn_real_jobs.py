"""The unchanged definition, executed in moto, where each RunTask runs the real job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import klipmedia
from klippers import statemachine
from klippers.contract import ShortsConfig, VideoRef
from klippers.jobs import child, parent
from klippers.storage import S3Storage
from tests.klippers.sfn_harness import BUCKET, CHILD_FAMILY, PARENT_FAMILY, Harness, moto_cloud
from tests.support.talk import talk_video
from tests.support.whisper_models import ct2_tiny_en_path

pytestmark = pytest.mark.slow

REF = VideoRef("creator-9", "talk-3")


@pytest.fixture(scope="module")
def cloud() -> Iterator[Harness]:
    with moto_cloud() as harness:
        yield harness


def test_execution_runs_the_real_jobs_and_fills_the_warehouse(
    cloud: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint)
    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))
    cloud.provision()
    cloud.jobs[PARENT_FAMILY] = parent.run_job
    cloud.jobs[CHILD_FAMILY] = child.run_job
    storage = S3Storage(BUCKET, endpoint_url=cloud.endpoint)
    talk = talk_video()
    storage.upload(talk, REF.original_video)
    config = ShortsConfig(segment_count=2, target_short_video_duration_in_seconds=20)
    storage.write_bytes(REF.shorts_config, config.to_json().encode())
    storage.upload(klipmedia.thumbnail(talk, tmp_path / "t.png"), REF.thumbnail)

    result = cloud.execute(statemachine.execution_input(REF), timeout=600)

    assert (result.status, result.error) == ("SUCCEEDED", None), result.cause
    count = ShortsConfig.from_json(storage.read_bytes(REF.shorts_config)).segment_count
    assert count == 2
    assert len(cloud.runs_of(CHILD_FAMILY)) == count
    for key in REF.all_keys(count):
        assert storage.exists(key), key
    short = storage.download(REF.short_video(2), tmp_path / "s.mp4")
    assert (klipmedia.probe(short).width, klipmedia.probe(short).height) == (1080, 1920)
