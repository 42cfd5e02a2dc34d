"""The pipeline end to end: klip run on a local warehouse, and the jobs against S3 on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from click.testing import CliRunner

import klipmedia
from klippers.cli import cli
from klippers.contract import EXIT_BAD_INPUT, ContractError, ShortsConfig, VideoRef
from klippers.jobs.parent import run_parent
from klippers.jobs.runner import JobInputError
from klippers.storage import LocalStorage, S3Storage, Storage
from tests.support import media
from tests.support.talk import talk_video
from tests.support.whisper_models import ct2_tiny_en_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def talk() -> Path:
    return talk_video()


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline tiny.en model, so nothing reaches a model hub."""
    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))


def klip(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_is_short(path: Path) -> None:
    info = klipmedia.probe(path)
    assert (info.width, info.height) == (1080, 1920)
    assert info.has_audio


def has_caption(path: Path, at: float) -> bool:
    rgb = media.decode_rgb_at(path, at).astype(int)
    white = (rgb > 235).all(axis=2)
    return int(white[int(0.1 * 1920) : int(0.85 * 1920)].sum()) > 800


@pytest.fixture(scope="module")
def local_run(talk: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("warehouse")
    os.environ["KLIPPERS_ASR_MODEL"] = str(ct2_tiny_en_path())
    result = klip(
        "run", str(talk), "--out", str(out), "--shorts", "2", "--duration", "20", "--workers", "2"
    )
    return out, result


def test_klip_run_makes_the_whole_layout(local_run: tuple[Path, Any]) -> None:
    out, result = local_run
    assert result.exit_code == 0, result.output
    ref = VideoRef("local", "talk-v1")
    storage = LocalStorage(out)
    config = ShortsConfig.from_json(storage.read_bytes(ref.shorts_config), ref=ref)
    assert config.segment_count >= 2
    for key in ref.all_keys(config.segment_count):
        assert storage.exists(key), key
    manifest = json.loads(storage.read_bytes(ref.manifest))
    assert manifest["segment_count"] == config.segment_count
    assert {entry["reframe"] for entry in manifest["segments"]} == {"speaker"}
    for n in range(1, config.segment_count + 1):
        short = out / ref.short_video(n)
        assert_is_short(short)
        assert has_caption(short, 2.0)
    assert "gallery:" in result.output
    assert "shorts" in result.output


def _aac_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def test_shorts_carry_the_segments_audio_untouched(local_run: tuple[Path, Any]) -> None:
    out, _ = local_run
    ref = VideoRef("local", "talk-v1")
    segment, short = out / ref.segment_video(1), out / ref.short_video(1)
    copied = _aac_packets(short)
    assert len(copied) > 100
    assert copied == _aac_packets(segment)[: len(copied)]


def test_gallery_lists_every_short(local_run: tuple[Path, Any]) -> None:
    out, _ = local_run
    folder = out / VideoRef("local", "talk-v1").prefix
    page = (folder / "index.html").read_text()
    manifest = json.loads((folder / "important_segments_videos.json").read_text())
    assert page.count('class="short"') == manifest["segment_count"]
    for entry in manifest["segments"]:
        n = entry["index"]
        assert f'src="videos-cropped-stacked/segment_{n}_cropped_stacked.mp4"' in page
        assert (folder / "gallery" / f"segment_{n}.png").is_file()


def test_rerun_is_a_no_op(local_run: tuple[Path, Any], talk: Path) -> None:
    out, _ = local_run
    ref = VideoRef("local", "talk-v1")
    watched = [out / ref.manifest, out / ref.short_video(1), out / ref.original_words]
    before = [p.stat().st_mtime_ns for p in watched]
    result = klip(
        "run", str(talk), "--out", str(out), "--shorts", "2", "--duration", "20", "--workers", "1"
    )
    assert result.exit_code == 0, result.output
    assert [p.stat().st_mtime_ns for p in watched] == before
    assert "already done" in result.output


def test_bad_video_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    out = tmp_path / "out"
    result = klip("run", str(empty), "--out", str(out))
    assert result.exit_code == EXIT_BAD_INPUT
    assert "empty" in result.output
    assert not out.exists()


def test_traversal_ids_are_refused(talk: Path, tmp_path: Path) -> None:
    result = klip("run", str(talk), "--out", str(tmp_path / "o"), "--user", "../evil")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "user_id" in result.output
    assert not (tmp_path / "o" / "klippers_warehouse").exists()


def put_inputs(storage: Storage, ref: VideoRef, video: Path, config: dict[str, Any]) -> None:
    """What an upload puts in the warehouse: the video, its config (and a thumbnail)."""
    storage.upload(video, ref.original_video)
    storage.write_bytes(ref.shorts_config, json.dumps(config).encode())


def put_thumbnail(storage: Storage, ref: VideoRef, video: Path, folder: Path) -> None:
    storage.upload(klipmedia.thumbnail(video, folder / "thumbnail.png"), ref.thumbnail)


def outputs(storage: Storage, ref: VideoRef) -> list[str]:
    """Keys the jobs wrote (anything but the inputs)."""
    return [k for k in storage.list(ref.prefix) if k not in (ref.original_video, ref.shorts_config)]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"segment_count": 10_000}, "segment_count"),
        ({"segment_count": "three"}, "segment_count"),
        (
            {"segment_count": 2, "target_short_video_duration_in_seconds": -5},
            "target_short_video_duration_in_seconds",
        ),
    ],
)
def test_invalid_config_names_the_field(
    talk: Path, tmp_path: Path, config: dict[str, Any], message: str
) -> None:
    storage, ref = LocalStorage(tmp_path / "w"), VideoRef("u", "v")
    put_inputs(storage, ref, talk, config)
    with pytest.raises(ContractError, match=message):
        run_parent(ref, storage, tmp_path / "work")
    assert outputs(storage, ref) == []


def test_missing_inputs_are_named(talk: Path, tmp_path: Path) -> None:
    storage, ref = LocalStorage(tmp_path / "w"), VideoRef("u", "v")
    with pytest.raises(JobInputError, match=r"shorts_config\.json is missing"):
        run_parent(ref, storage, tmp_path / "work")
    storage.write_bytes(ref.shorts_config, b'{"segment_count": 1}')
    with pytest.raises(JobInputError, match=r"original\.mp4 is missing"):
        run_parent(ref, storage, tmp_path / "work")
    storage.write_bytes(ref.shorts_config, b"{not json")
    with pytest.raises(ContractError):
        run_parent(ref, storage, tmp_path / "work")


def test_video_without_audio_is_refused(tmp_path: Path) -> None:
    silent = media.write_video(
        tmp_path / "mute.mp4", media.ramp(320, 180), width=320, height=180, duration=1.0
    )
    storage, ref = LocalStorage(tmp_path / "w"), VideoRef("u", "v")
    put_inputs(storage, ref, silent, {"segment_count": 1})
    with pytest.raises(JobInputError, match="no audio track"):
        run_parent(ref, storage, tmp_path / "work")
    assert outputs(storage, ref) == []


def test_parent_module_exits_with_bad_input_code(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "USER_ID": "u",
        "VIDEO_ID": "v",
        "KLIPPERS_WAREHOUSE": str(tmp_path / "w"),
        "KLIPPERS_LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [sys.executable, "-m", "klippers.parent"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_BAD_INPUT
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["level"] == "ERROR"
    assert "shorts_config.json is missing" in line["message"]


@pytest.fixture
def s3_storage(aws_env: None, s3_endpoint: str) -> S3Storage:
    import boto3

    name = f"klippers-pipeline-{os.getpid()}-{time.monotonic_ns()}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return S3Storage(name, endpoint_url=s3_endpoint)


def test_jobs_on_s3_end_to_end_with_a_killed_child(
    s3_storage: S3Storage, s3_endpoint: str, talk: Path, tmp_path: Path
) -> None:
    from klippers.jobs.child import run_child

    ref = VideoRef("creator-1", "episode-7")
    put_inputs(
        s3_storage, ref, talk, {"segment_count": 0, "target_short_video_duration_in_seconds": 20}
    )
    put_thumbnail(s3_storage, ref, talk, tmp_path)
    parent = run_parent(ref, s3_storage, tmp_path / "p1")
    count = parent.segment_count
    assert count >= 1  # 0 asked the parent to choose
    config = json.loads(s3_storage.read_bytes(ref.shorts_config))
    assert config["segment_count"] == count

    # Child 1 is killed mid-render: nothing may appear at its final key.
    workdir = tmp_path / "killed"
    env = {
        **os.environ,
        "USER_ID": ref.user_id,
        "VIDEO_ID": ref.video_id,
        "SEGMENT": "1",
        "VIDEO_WAREHOUSE_S3_BUCKET_NAME": s3_storage.bucket,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "KLIPPERS_WORKDIR": str(workdir),
    }
    child = subprocess.Popen([sys.executable, "-m", "klippers.child"], env=env)
    deadline = time.monotonic() + 120
    while not list(workdir.rglob(".short.mp4.*.partial")):
        assert child.poll() is None, "the child ended before it started rendering"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not s3_storage.exists(ref.short_video(1))

    for n in range(1, count + 1):
        assert not run_child(ref, n, s3_storage, tmp_path / f"c{n}").reused
    for key in ref.all_keys(count):
        assert s3_storage.exists(key), key
    short = s3_storage.download(ref.short_video(1), tmp_path / "s1.mp4")
    assert_is_short(short)

    # A re-run of every job is a no-op.
    assert run_parent(ref, s3_storage, tmp_path / "p2").reused
    assert all(
        run_child(ref, n, s3_storage, tmp_path / f"r{n}").reused for n in range(1, count + 1)
    )

    # Other encode settings render the short again; its recipe is an object beside it.
    faster = klipmedia.EncodeSettings(preset="ultrafast")
    assert not run_child(ref, 1, s3_storage, tmp_path / "e1", encode=faster).reused
    assert run_child(ref, 1, s3_storage, tmp_path / "e2", encode=faster).reused
    assert s3_storage.exists(ref.short_recipe(1))


def test_segments_end_on_sentence_ends(local_run: tuple[Path, Any]) -> None:
    out, _ = local_run
    ref = VideoRef("local", "talk-v1")
    manifest = json.loads((out / ref.manifest).read_text())
    for entry in manifest["segments"]:
        assert entry["text"].rstrip().endswith((".", "?", "!")), entry["text"]
    srt = (out / ref.segment_srt(1)).read_text()
    assert srt.startswith("1\n00:00:0")
    assert np.isfinite(manifest["segments"][0]["score"])


def chromium() -> str:
    """Debian's chromium; missing is a skip locally but a failure in CI."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    return found


def browse(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_gallery_as_a_person_sees_it(local_run: tuple[Path, Any], tmp_path: Path) -> None:
    from PIL import Image

    out, _ = local_run
    page = out / VideoRef("local", "talk-v1").prefix / "index.html"
    dom = browse(page, tmp_path, "--dump-dom").stdout
    assert dom.count("<video") == dom.count('class="short"') >= 2
    shot = tmp_path / "gallery.png"
    browse(page, tmp_path, "--window-size=1000,800", f"--screenshot={shot}")
    picture = np.asarray(Image.open(shot).convert("L"))
    first_card = picture[120:600, 40:310]  # the first short's poster
    # The poster was loaded and drawn: about 9 % bright pixels, under 1 % without it.
    assert (first_card > 120).mean() > 0.04
