"""``klip cloud`` against moto's server on loopback (fake credentials, never real AWS).

Most tests use the plain server, where executions stay RUNNING (what the double-start
check needs). The history and log tests execute the real definition with
``tests.klippers.sfn_harness`` so the task ARNs come from moto's ECS.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from klippers.aws import STACK_ENV, STATE_MACHINE_ARN_ENV, StackNames
from klippers.cli import cli
from klippers.cloud.clients import Clients, CloudInputError
from klippers.cloud.executions import (
    MAX_EXECUTION_NAME,
    execution_name,
    execution_prefix,
    execution_status,
)
from klippers.cloud.logs import STATE_MACHINE_SOURCE, job_streams, log_lines
from klippers.cloud.warehouse import ConfigChanges, slug, upload
from klippers.contract import (
    ENV_BUCKET,
    ENV_USER_ID,
    ENV_VIDEO_ID,
    ShortsConfig,
    VideoRef,
)
from klippers.statemachine import (
    PLACEHOLDERS,
    RUN_PARENT,
    build_definition,
    execution_input,
)
from tests.support import media

pytest.importorskip("boto3")

NAMES = StackNames.for_stack("cli")
ROLE = f"arn:aws:iam::123456789012:role/{NAMES.state_machine_role}"
REF = VideoRef("alice", "my-talk")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Aws:
    """A fresh bucket and the state machine of stack ``cli`` on the moto server."""

    endpoint: str
    bucket: str
    machine_arn: str
    clients: Clients

    @property
    def storage(self) -> Any:
        return self.clients.warehouse(self.bucket)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2 s 320x180 H.264 + AAC file named like a user's upload."""
    folder = tmp_path_factory.mktemp("cloud-media")
    return media.write_video(
        folder / "My Talk.mp4",
        media.ramp(320, 180),
        width=320,
        height=180,
        duration=2.0,
        audio=media.tone(2.0),
    )


def _state_machine(clients: Clients, bucket: str, name: str = NAMES.state_machine) -> str:
    definition = build_definition(**{**PLACEHOLDERS, "bucket": bucket})
    created = clients.sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=ROLE
    )
    return str(created["stateMachineArn"])


@pytest.fixture
def aws(aws_env: None, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for name in (ENV_USER_ID, ENV_VIDEO_ID, STATE_MACHINE_ARN_ENV, STACK_ENV):
        monkeypatch.delenv(name, raising=False)
    clients = Clients.connect()
    bucket = f"klippers-cloud-{uuid.uuid4().hex[:12]}"
    clients.s3.create_bucket(Bucket=bucket)
    arn = _state_machine(clients, bucket)
    yield Aws(s3_endpoint, bucket, arn, clients)
    for machine in clients.sfn.list_state_machines()["stateMachines"]:
        clients.sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])


def klip(*args: str, env: Mapping[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["cloud", *args], env=dict(env or {}))


def _executions(aws: Aws) -> list[dict[str, Any]]:
    return list(aws.clients.sfn.list_executions(stateMachineArn=aws.machine_arn)["executions"])


def _uploaded(aws: Aws, clip: Path, ref: VideoRef = REF, shorts: int = 3) -> None:
    upload(aws.storage, clip, ref, ConfigChanges(shorts=shorts, short_seconds=30))


# --- upload -----------------------------------------------------------------------------------


def test_upload_puts_video_config_and_png_thumbnail(aws: Aws, clip: Path) -> None:
    result = klip(
        "upload",
        str(clip),
        "--user",
        "alice",
        "--shorts",
        "3",
        "--duration",
        "30",
        "--bucket",
        aws.bucket,
    )
    assert result.exit_code == 0, result.output
    ref = VideoRef("alice", "my-talk")  # the video ID is a slug of "My Talk.mp4"
    assert set(aws.storage.list(ref.prefix)) == set(ref.input_keys())
    assert aws.storage.read_bytes(ref.original_video) == clip.read_bytes()
    config = ShortsConfig.from_json(aws.storage.read_bytes(ref.shorts_config).decode())
    assert (config.segment_count, config.target_short_video_duration_in_seconds) == (3, 30)
    assert (config.user_id, config.video_id) == ("alice", "my-talk")
    png = aws.storage.read_bytes(ref.thumbnail)
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (640, 360)
    assert "klip cloud run --user alice --video my-talk" in result.output

    again = klip("upload", str(clip), "--user", "alice", "--bucket", aws.bucket)
    assert again.exit_code == 0, again.output
    assert again.output.count("already there, not sent again") == 3
    assert "updated the stored config" in again.output
    config = ShortsConfig.from_json(aws.storage.read_bytes(ref.shorts_config).decode())
    assert config.segment_count == 3  # kept: --shorts was not given


def test_upload_merges_flags_into_the_stored_config(aws: Aws, clip: Path, tmp_path: Path) -> None:
    stored = {
        "segment_count": 7,  # as the parent records it
        "target_short_video_duration_in_seconds": 45,
        "layout": "split",
        "language": "de",
        "caption_style": {"font_size": 70},
        "future_field": {"kept": True},
    }
    aws.storage.write_bytes(REF.shorts_config, json.dumps(stored).encode())
    style = tmp_path / "style.json"
    style.write_text('{"uppercase": true}')
    background = media.write_video(
        tmp_path / "loop.mov", media.ramp(64, 64), width=64, height=64, duration=1.0
    )
    result = klip(
        "upload",
        str(clip),
        "--user",
        "alice",
        "--layout",
        "blurred",
        "--reframe",
        "face",
        "--scorer",
        "llm",
        "--caption-style",
        f"@{style}",
        "--background",
        str(background),
        "--bucket",
        aws.bucket,
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(aws.storage.read_bytes(REF.shorts_config))
    assert doc == {
        **stored,
        "user_id": "alice",
        "video_id": "my-talk",
        "layout": "blurred",
        "reframe": "face",
        "scorer": "llm",
        "caption_style": {"uppercase": True},
        "background_video": "background.mp4",
    }
    assert aws.storage.read_bytes(REF.key("background.mp4")) == background.read_bytes()

    shared = klip(
        "upload",
        str(clip),
        "--user",
        "alice",
        "--shorts",
        "2",
        "--language",
        "en",
        "--caption-style",
        '{"font_size": 96}',
        "--background",
        "backgrounds/rain.mp4",
        "--bucket",
        aws.bucket,
    )
    assert shared.exit_code == 0, shared.output
    config = ShortsConfig.from_json(aws.storage.read_bytes(REF.shorts_config), ref=REF)
    assert (config.segment_count, config.language, config.layout) == (2, "en", "blurred")
    assert (config.background_video, dict(config.caption_style or {})) == (
        "backgrounds/rain.mp4",
        {"font_size": 96},
    )
    assert config.extras == {"future_field": {"kept": True}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--caption-style", "{font_size: 96"], "not valid JSON"),
        (["--caption-style", "[1, 2]"], "must be a JSON object"),
        (["--caption-style", "@/no/such/style.json"], "cannot read"),
        (["--caption-style", '{"font_size": 10}'], "caption_style"),
        (["--caption-style", '{"colour": "red"}'], "unknown field(s) colour"),
        (["--layout", "wide"], "--layout"),
        (["--scorer", "gpt"], "--scorer"),
        (["--language", "English"], "language"),
        (["--background", "backgrounds/../x.mp4"], "background_video"),
        (["--background", "klippers_warehouse/bob/talk/bg.mp4"], "--background"),
        (["--background", "/no/such/loop.mp4"], "no such file"),
    ],
)
def test_upload_refuses_bad_settings_and_writes_nothing(
    aws: Aws, clip: Path, args: list[str], message: str
) -> None:
    stored = ShortsConfig(segment_count=4, layout="full").to_json().encode()
    aws.storage.write_bytes(REF.shorts_config, stored)
    result = klip("upload", str(clip), "--user", "alice", *args, "--bucket", aws.bucket)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert aws.storage.list("") == [REF.shorts_config]
    assert aws.storage.read_bytes(REF.shorts_config) == stored


def test_upload_refuses_a_stored_config_that_is_not_json(aws: Aws, clip: Path) -> None:
    aws.storage.write_bytes(REF.shorts_config, b"segment_count: 3")
    result = klip("upload", str(clip), "--user", "alice", "--shorts", "2", "--bucket", aws.bucket)
    assert result.exit_code == 2
    assert "the stored config is not JSON" in result.output
    assert aws.storage.list("") == [REF.shorts_config]


def test_upload_takes_the_bucket_from_the_seed_variable(aws: Aws, clip: Path) -> None:
    result = klip(
        "upload", str(clip), "--user", "bob", "--video", "v1", env={ENV_BUCKET: aws.bucket}
    )
    assert result.exit_code == 0, result.output
    assert aws.storage.exists(VideoRef("bob", "v1").shorts_config)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "a/b"], "user_id"),
        (["--user", "alice", "--video", "x y"], "video_id"),
        (["--user", "alice", "--duration", "1"], "target_short_video_duration_in_seconds"),
        (["--user", "alice", "--shorts", "51"], "segment_count"),
    ],
)
def test_upload_refuses_bad_ids_and_config(
    aws: Aws, clip: Path, args: list[str], message: str
) -> None:
    result = klip("upload", str(clip), *args, "--bucket", aws.bucket)
    assert result.exit_code == 2
    assert message in result.output
    assert aws.storage.list("") == []


def test_upload_refuses_a_file_that_is_not_a_video(aws: Aws, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    result = klip("upload", str(fake), "--user", "alice", "--bucket", aws.bucket)
    assert result.exit_code == 2
    assert "not a readable media file" in result.output
    missing = klip("upload", str(tmp_path / "gone.mp4"), "--user", "alice", "--bucket", aws.bucket)
    assert missing.exit_code == 2
    assert "no such file" in missing.output
    assert aws.storage.list("") == []


def test_upload_needs_a_bucket(aws: Aws, clip: Path) -> None:
    result = klip("upload", str(clip), "--user", "alice")
    assert result.exit_code == 2
    assert ENV_BUCKET in result.output


def test_slug() -> None:
    assert slug("My Talk (2024) final.MP4") == "my-talk-2024-final"
    with pytest.raises(CloudInputError, match="--video"):
        slug("???.mp4")


# --- run --------------------------------------------------------------------------------------


def test_run_starts_a_named_execution_from_the_seed_variables(aws: Aws, clip: Path) -> None:
    _uploaded(aws, clip)
    env = {ENV_USER_ID: REF.user_id, ENV_VIDEO_ID: REF.video_id}
    result = klip("run", env=env)
    assert result.exit_code == 0, result.output
    [execution] = _executions(aws)
    assert execution["name"] == execution_name(REF, 1)
    assert execution["status"] == "RUNNING"
    described = aws.clients.sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == execution_input(REF)
    assert execution["executionArn"] in result.output
    assert "klip cloud status --user alice --video my-talk" in result.output
    assert "klip cloud logs --user alice --video my-talk --follow" in result.output


def test_a_second_run_is_refused_while_the_first_runs(aws: Aws, clip: Path) -> None:
    _uploaded(aws, clip)
    first = klip("run", "--user", "alice", "--video", "my-talk")
    assert first.exit_code == 0, first.output
    [running] = _executions(aws)

    second = klip("run", "--user", "alice", "--video", "my-talk")
    assert second.exit_code == 1
    assert "already running" in second.output
    assert running["executionArn"] in second.output
    assert len(_executions(aws)) == 1

    assert klip("stop", "--user", "alice", "--video", "my-talk").exit_code == 0
    third = klip("run", "--user", "alice", "--video", "my-talk")
    assert third.exit_code == 0, third.output
    names = {e["name"] for e in _executions(aws)}
    assert names == {execution_name(REF, 1), execution_name(REF, 2)}


def test_another_video_runs_alongside(aws: Aws, clip: Path) -> None:
    other = VideoRef("alice", "my-talk-2")
    _uploaded(aws, clip)
    _uploaded(aws, clip, other)
    assert klip("run", "--user", "alice", "--video", "my-talk").exit_code == 0
    result = klip("run", "--user", "alice", "--video", "my-talk-2")
    assert result.exit_code == 0, result.output
    assert len(_executions(aws)) == 2


@pytest.mark.parametrize("missing", ["original_video", "shorts_config", "thumbnail"])
def test_run_refuses_missing_inputs_naming_the_key(aws: Aws, clip: Path, missing: str) -> None:
    _uploaded(aws, clip)
    key = getattr(REF, missing)
    aws.storage.delete(key)
    result = klip("run", "--user", "alice", "--video", "my-talk")
    assert result.exit_code == 2
    assert key in result.output
    assert _executions(aws) == []


def test_run_refuses_an_invalid_config(aws: Aws, clip: Path) -> None:
    _uploaded(aws, clip)
    aws.storage.write_bytes(REF.shorts_config, b'{"segment_count": "five"}')
    result = klip("run", "--user", "alice", "--video", "my-talk")
    assert result.exit_code == 2
    assert "segment_count" in result.output
    assert _executions(aws) == []


def test_run_needs_ids(aws: Aws) -> None:
    result = klip("run", "--user", "alice")
    assert result.exit_code == 2
    assert ENV_VIDEO_ID in result.output


def test_run_finds_the_state_machine_by_arn_and_checks_its_bucket(aws: Aws, clip: Path) -> None:
    other_bucket = f"klippers-other-{uuid.uuid4().hex[:8]}"
    aws.clients.s3.create_bucket(Bucket=other_bucket)
    other = _state_machine(aws.clients, other_bucket, name="klippers-staging")
    upload(
        aws.clients.warehouse(other_bucket), clip, REF, ConfigChanges(shorts=2, short_seconds=30)
    )

    result = klip(
        "run",
        "--user",
        "alice",
        "--video",
        "my-talk",
        env={STATE_MACHINE_ARN_ENV: other},
    )
    assert result.exit_code == 0, result.output
    assert len(aws.clients.sfn.list_executions(stateMachineArn=other)["executions"]) == 1
    assert _executions(aws) == []  # not the one found by name

    wrong = klip(
        "run",
        "--user",
        "alice",
        "--video",
        "my-talk",
        "--state-machine-arn",
        aws.machine_arn,
        "--bucket",
        other_bucket,
    )
    assert wrong.exit_code == 2
    assert f"is not the one {NAMES.state_machine} reads" in wrong.output


def test_run_says_when_no_state_machine_is_deployed(aws: Aws) -> None:
    aws.clients.sfn.delete_state_machine(stateMachineArn=aws.machine_arn)
    result = klip("run", "--user", "alice", "--video", "my-talk")
    assert result.exit_code == 1
    assert "no state machine of a klippers stack" in result.output
    named = klip("run", "--user", "alice", "--video", "my-talk", "--stack", "prod")
    assert named.exit_code == 1
    assert "no state machine named klippers-prod-video-processing" in named.output
    unknown = aws.machine_arn.replace(NAMES.state_machine, "nothing-here")
    by_arn = klip("run", "--user", "alice", "--video", "my-talk", "--state-machine-arn", unknown)
    assert by_arn.exit_code == 1
    assert "StateMachineDoesNotExist" in by_arn.output


def test_execution_names_are_valid_unique_and_bounded() -> None:
    long = VideoRef("u" * 128, "v@x+y=z." + "w" * 100)
    name = execution_name(long, 99999)
    assert len(name) <= MAX_EXECUTION_NAME
    assert all(c.isalnum() or c in "-_" for c in name)
    # Same readable text, different IDs: the digest keeps them apart.
    assert execution_prefix(VideoRef("a-b", "c")) != execution_prefix(VideoRef("a", "b-c"))
    assert execution_name(REF, 3) == execution_prefix(REF) + "3"


# --- status, list, stop -----------------------------------------------------------------------


def test_status_reports_the_execution_and_the_shorts_so_far(aws: Aws, clip: Path) -> None:
    _uploaded(aws, clip, shorts=3)
    assert klip("run", "--user", "alice", "--video", "my-talk").exit_code == 0
    for n in (1, 2):
        aws.storage.write_bytes(REF.short_video(n), b"short")
    result = klip("status", "--user", "alice", "--video", "my-talk")
    assert result.exit_code == 0, result.output
    rows = dict(line.split(None, 1) for line in result.output.splitlines())
    assert rows["execution"] == execution_name(REF, 1)
    assert rows["video"] == "alice/my-talk"
    assert rows["status"] == "RUNNING"
    assert rows["shorts"].startswith("2 of 3 in s3://")

    by_name = klip("status", execution_name(REF, 1))
    assert by_name.exit_code == 0, by_name.output
    assert by_name.output == result.output


def test_status_without_a_run_is_a_clear_error(aws: Aws) -> None:
    result = klip("status", "--user", "alice", "--video", "my-talk")
    assert result.exit_code == 2
    assert "no execution of alice/my-talk yet" in result.output


def test_list_shows_recent_executions_filtered_by_user_and_video(aws: Aws, clip: Path) -> None:
    refs = [VideoRef("alice", "a1"), VideoRef("alice", "a2"), VideoRef("bob", "b1")]
    for ref in refs:
        _uploaded(aws, clip, ref)
        assert klip("run", "--user", ref.user_id, "--video", ref.video_id).exit_code == 0

    def names(*args: str) -> list[str]:
        result = klip("list", *args)
        assert result.exit_code == 0, result.output
        return [line.split()[0] for line in result.output.splitlines()[1:]]

    every = names()
    assert sorted(every) == sorted(execution_name(r, 1) for r in refs)
    assert names("--user", "alice") == [
        n for n in every if n in {execution_name(r, 1) for r in refs[:2]}
    ]
    assert names("--user", "alice", "--video", "a2") == [execution_name(refs[1], 1)]
    assert len(names("--limit", "2")) == 2
    assert klip("list", "--user", "carol").output == "no executions\n"
    no_user = klip("list", "--video", "a1")
    assert no_user.exit_code == 2
    assert "--video needs --user" in no_user.output


def test_stop_aborts_a_running_execution_and_refuses_a_stopped_one(aws: Aws, clip: Path) -> None:
    _uploaded(aws, clip)
    assert klip("run", "--user", "alice", "--video", "my-talk").exit_code == 0
    [execution] = _executions(aws)
    result = klip("stop", execution["executionArn"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("ABORTED")
    assert _executions(aws)[0]["status"] == "ABORTED"
    again = klip("stop", "--user", "alice", "--video", "my-talk")
    assert again.exit_code == 1
    assert "is not running (status ABORTED)" in again.output


# --- download ---------------------------------------------------------------------------------


def test_download_fetches_shorts_manifest_and_segment_captions(
    aws: Aws, clip: Path, tmp_path: Path
) -> None:
    _uploaded(aws, clip, shorts=2)
    wanted = {REF.manifest: b'{"segments": []}'}
    for n in (1, 2):
        wanted[REF.short_video(n)] = f"short {n}".encode()
        wanted[REF.segment_srt(n)] = f"1\n00:00:00,000 --> 00:00:01,000\nsegment {n}\n".encode()
        aws.storage.write_bytes(REF.segment_video(n), b"cut segment, not downloaded")
        aws.storage.write_bytes(REF.segment_words(n), b"{}")
    for key, data in wanted.items():
        aws.storage.write_bytes(key, data)

    out = tmp_path / "shorts"
    result = klip(
        "download", "--user", "alice", "--video", "my-talk", "-o", str(out), "--bucket", aws.bucket
    )
    assert result.exit_code == 0, result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {
        key.rpartition("/")[2]: data for key, data in wanted.items()
    }
    again = klip(
        "download", "--user", "alice", "--video", "my-talk", "-o", str(out), "--bucket", aws.bucket
    )
    assert again.exit_code == 0
    assert again.output.count("up to date") == len(wanted)
    assert "downloaded" not in again.output


def test_download_before_any_short_is_a_clear_error(aws: Aws, clip: Path, tmp_path: Path) -> None:
    _uploaded(aws, clip)
    result = klip(
        "download",
        "--user",
        "alice",
        "--video",
        "my-talk",
        "-o",
        str(tmp_path / "o"),
        "--bucket",
        aws.bucket,
    )
    assert result.exit_code == 2
    assert "no shorts" in result.output
    assert not (tmp_path / "o").exists()


# --- logs -------------------------------------------------------------------------------------


def _put_events(logs: Any, group: str, stream: str, messages: list[tuple[int, str]]) -> None:
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": t, "message": m} for t, m in messages],
    )


def _state_event(execution_arn: str, kind: str) -> str:
    return json.dumps({"type": kind, "execution_arn": execution_arn, "details": {}})


def test_logs_follow_polls_until_the_execution_ends(aws: Aws, clip: Path) -> None:
    _uploaded(aws, clip)
    assert klip("run", "--user", "alice", "--video", "my-talk").exit_code == 0
    [execution] = _executions(aws)
    arn = execution["executionArn"]
    now = int(time.time() * 1000)
    logs = aws.clients.logs
    stream = f"states/{NAMES.state_machine}/1"
    _put_events(
        logs,
        NAMES.state_machine_log_group,
        stream,
        [
            (now, _state_event(arn, "ExecutionStarted")),
            (now + 1, _state_event(arn.replace("-1", "-9"), "OtherExecution")),
        ],
    )
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the execution ends while "waiting"
        sleeps.append(seconds)
        if len(sleeps) > 1:
            return  # a read for late lines after the end: none come
        logs.put_log_events(
            logGroupName=NAMES.state_machine_log_group,
            logStreamName=stream,
            logEvents=[{"timestamp": now + 2, "message": _state_event(arn, "ExecutionAborted")}],
        )
        aws.clients.sfn.stop_execution(executionArn=arn)

    groups = {
        "state_machine_group": NAMES.state_machine_log_group,
        "jobs_group": NAMES.jobs_log_group,
    }
    lines = list(
        log_lines(aws.clients.sfn, logs, arn, **groups, follow=True, poll_seconds=3, sleep=sleep)
    )
    assert sleeps == [3, 3]
    assert [json.loads(line.message)["type"] for line in lines] == [
        "ExecutionStarted",
        "ExecutionAborted",
    ]
    assert {line.source for line in lines} == {STATE_MACHINE_SOURCE}

    once = list(log_lines(aws.clients.sfn, logs, arn, **groups, sleep=sleep))
    assert len(once) == 2
    assert sleeps == [3, 3], "without --follow, no wait"


def test_logs_and_status_of_a_real_execution(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The definition runs in moto (parent blocks, then one child per segment)."""
    from tests.klippers.sfn_harness import BUCKET, CHILD_FAMILY, NAMES, PARENT_FAMILY, moto_cloud

    released = threading.Event()

    def parent(env: Mapping[str, str]) -> None:
        if not released.wait(30):
            raise TimeoutError("the test never released the parent")

    with moto_cloud() as harness:
        monkeypatch.setenv("AWS_ENDPOINT_URL", harness.endpoint)
        harness.provision()
        harness.jobs[PARENT_FAMILY] = parent
        harness.jobs[CHILD_FAMILY] = lambda env: None
        clients = Clients.connect()
        storage = clients.warehouse(BUCKET)
        storage.write_bytes(REF.original_video, b"video")
        storage.write_bytes(REF.thumbnail, PNG_SIGNATURE)
        storage.write_bytes(REF.shorts_config, ShortsConfig(segment_count=2).to_json().encode())
        try:
            started = klip("run", "--user", "alice", "--video", "my-talk")
            assert started.exit_code == 0, started.output
            arn = clients.sfn.list_executions(stateMachineArn=harness.state_machine_arn)[
                "executions"
            ][0]["executionArn"]
            status = _wait(
                lambda: execution_status(clients.sfn, storage, arn),
                lambda s: s.current_states == ((RUN_PARENT, 1),),
            )
            assert status.status == "RUNNING"
            shown = klip("status", "--user", "alice", "--video", "my-talk")
            assert "current    RunParent" in shown.output
            refused = klip("run", "--user", "alice", "--video", "my-talk")
            assert refused.exit_code == 1
        finally:
            released.set()
        done = _wait(
            lambda: execution_status(clients.sfn, storage, arn),
            lambda s: s.status != "RUNNING",
        )
        assert (done.status, done.current_states) == ("SUCCEEDED", ())

        history = clients.sfn.get_execution_history(executionArn=arn)["events"]
        streams = job_streams(history)
        assert sorted(s.split("/")[0] for s in streams) == ["child", "child", "parent"]
        start = int(time.time() * 1000) - 500
        for i, stream in enumerate(streams):
            _put_events(clients.logs, NAMES.jobs_log_group, stream, [(start + 10 * i, stream)])
        _put_events(
            clients.logs,
            NAMES.jobs_log_group,
            "parent/klippers-parent/other-task",
            [(start, "another execution's task")],
        )
        _put_events(
            clients.logs,
            NAMES.state_machine_log_group,
            "states/x",
            [(start - 1, _state_event(arn, "ExecutionStarted"))],
        )

        lines = list(
            log_lines(
                clients.sfn,
                clients.logs,
                arn,
                state_machine_group=NAMES.state_machine_log_group,
                jobs_group=NAMES.jobs_log_group,
            )
        )
        assert [line.message for line in lines] == [_state_event(arn, "ExecutionStarted"), *streams]
        assert [line.source for line in lines] == [STATE_MACHINE_SOURCE, *streams]
        printed = klip("logs", arn)
        assert printed.exit_code == 0, printed.output
        assert [line.split()[2] for line in printed.output.splitlines()] == [
            STATE_MACHINE_SOURCE,
            *streams,
        ]


def _wait(get: Any, ready: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not ready(value := get()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value} after {timeout} s")
        time.sleep(0.05)
    return value


# --- stacks ------------------------------------------------------------------------------------


def test_the_state_machine_is_found_by_stack(aws: Aws, clip: Path) -> None:
    _uploaded(aws, clip)
    prod = StackNames.for_stack("prod")
    prod_arn = _state_machine(aws.clients, aws.bucket, name=prod.state_machine)
    _state_machine(aws.clients, aws.bucket, name="someone-elses-machine")

    several = klip("run", "--user", "alice", "--video", "my-talk")
    assert several.exit_code == 2
    assert "several stacks here (cli, prod)" in several.output
    assert _executions(aws) == []

    by_flag = klip("run", "--user", "alice", "--video", "my-talk", "--stack", "prod")
    assert by_flag.exit_code == 0, by_flag.output
    assert prod_arn.replace(":stateMachine:", ":execution:") in by_flag.output
    by_env = klip("run", "--user", "alice", "--video", "my-talk", env={STACK_ENV: "cli"})
    assert by_env.exit_code == 0, by_env.output
    assert len(_executions(aws)) == 1
    listed = klip("list", "--stack", "prod")
    assert listed.exit_code == 0, listed.output
    assert execution_name(REF, 1) in listed.output


# --- a failed execution says why ---------------------------------------------------------------


def _exit_transient(env: Mapping[str, str]) -> None:
    raise SystemExit(75)


def test_status_of_a_failed_execution_names_the_job_exit_code_and_log(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Executed in moto: short 2 has bad input, short 1 renders; then the parent fails."""
    from klippers.contract import ContractError
    from tests.klippers.sfn_harness import BUCKET, CHILD_FAMILY, PARENT_FAMILY, moto_cloud

    def child(env: Mapping[str, str]) -> None:
        if env["SEGMENT"] == "2":
            raise ContractError("caption_style: unknown field 'colour'")
        storage.write_bytes(REF.short_video(1), b"short")

    with moto_cloud() as harness:
        monkeypatch.setenv("AWS_ENDPOINT_URL", harness.endpoint)
        harness.provision()
        harness.jobs[PARENT_FAMILY] = lambda env: None
        harness.jobs[CHILD_FAMILY] = child
        clients = Clients.connect()
        storage = clients.warehouse(BUCKET)
        storage.write_bytes(REF.original_video, b"video")
        storage.write_bytes(REF.thumbnail, PNG_SIGNATURE)
        storage.write_bytes(REF.shorts_config, ShortsConfig(segment_count=2).to_json().encode())
        assert klip("run", "--user", "alice", "--video", "my-talk").exit_code == 0
        _wait(
            lambda: klip("status", "--user", "alice", "--video", "my-talk").output,
            lambda out: "status     FAILED" in out,
        )
        shown = klip("status", "--user", "alice", "--video", "my-talk")
        assert shown.exit_code == 0, shown.output
        lines = shown.output.splitlines()
        assert "error      ChildTasksFailed" in lines
        assert "cause      failed shorts: segment 2 (bad input, not retried)" in lines
        assert any(line.startswith("shorts     1 of 2 in s3://") for line in lines)
        failed = lines.index(
            "failed     RenderShort segment 2: exit 2 (bad input), 1 failed attempt"
        )
        assert lines[failed + 1] == "  stopped  Essential container in task exited"
        assert lines[failed + 2].startswith("  task     arn:aws:ecs:")
        assert "caption_style: unknown field 'colour'" in lines[failed + 3]
        assert lines[failed + 3].startswith("  log      ")

        # A new run is accepted at once, and its parent now fails for a transient reason.
        harness.jobs[PARENT_FAMILY] = _exit_transient
        again = klip("run", "--user", "alice", "--video", "my-talk")
        assert again.exit_code == 0, again.output
        assert execution_name(REF, 2) in again.output
        second = _wait(
            lambda: klip("status", execution_name(REF, 2)).output,
            lambda out: "status     FAILED" in out,
        )
        assert "error      ParentTaskFailed" in second
        assert (
            "cause      Klippers.JobFailed: States.TaskFailed: exit 75, "
            "Essential container in task exited (failed after its retries)"
        ) in second
        assert "failed     RunParent: exit 75 (transient failure), 3 failed attempts" in second
        assert storage.exists(REF.short_video(1))


@pytest.mark.parametrize(
    ("stack", "slug"),
    [("dev", "dev"), ("prod-eu-1", "prod-eu-1"), ("Dev", None), ("a.b", None), ("x" * 40, None)],
)
def test_stack_names_are_valid_distinct_and_bounded(stack: str, slug: str | None) -> None:
    names = StackNames.for_stack(stack)
    if slug is not None:
        assert names.slug == slug
    assert len(names.slug) <= 32
    assert all(c.islower() or c.isdigit() or c == "-" for c in names.slug)
    assert len(names.state_machine_role) <= 64
    assert len(names.notifications) <= 64
    assert StackNames.from_state_machine(names.state_machine) == names
    assert StackNames.for_stack(names.slug) == names


def test_stacks_that_differ_only_in_case_or_punctuation_get_different_names() -> None:
    slugs = {StackNames.for_stack(s).slug for s in ("dev", "Dev", "DEV", "d.ev", "d_ev", "d-ev")}
    assert len(slugs) == 6
    assert StackNames.from_state_machine("klippers-video-processing") is None
    assert StackNames.from_state_machine("other-dev-video-processing") is None
    with pytest.raises(ValueError, match="stack"):
        StackNames.for_stack(" ")
