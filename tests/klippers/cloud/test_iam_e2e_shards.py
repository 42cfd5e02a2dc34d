"""Sharded transcription under exactly the policies of a ``shardTranscription`` stack.

As :mod:`tests.klippers.cloud.test_iam_e2e`, in moto's IAM-enforcing server with every S3
call recorded and decided again with AWS's semantics: a person uploads, the shard job
plans two windows and transcribes each as the shard role, the parent merges them as the
parent role. The state machine's own reads (``aws-sdk:s3:getObject`` states of the
deployed definition) are decided against its role the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from klippers import storage as storage_module
from klippers.cloud import warehouse
from klippers.cloud.clients import Clients
from klippers.contract import (
    ENV_BUCKET,
    ENV_SHARD,
    PARENT_JOB_MODULE,
    SHARD_JOB_MODULE,
    VideoRef,
)
from klippers.jobs import parent, shard
from klippers.jobs.runner import ENV_WORKDIR
from klippers.statemachine import S3_GET_OBJECT, all_states
from klippers.storage import S3Storage, StoragePermissionError
from tests.conftest import REGION
from tests.klippers.cloud.test_iam_e2e import Flow, _isolate
from tests.support.iam_policy import Bucket, Call, CallRecorder, check_calls
from tests.support.iam_program import STATE_MACHINE, policies, program_policies
from tests.support.moto_iam import IamMoto
from tests.support.talk import talk_video

pytestmark = pytest.mark.slow

REF = VideoRef("alice", "long-talk")
BACKGROUND = "backgrounds/loop.mp4"
SHARD, PARENT, PERSON, STATES = "shard", "parent", "alice", "states"
Document = Mapping[str, Any]


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    program = program_policies({"shardTranscription": "true"})
    documents = {
        SHARD: program.roles[SHARD_JOB_MODULE].policies,
        PARENT: program.roles[PARENT_JOB_MODULE].policies,
        PERSON: (policies.warehouse_user_policy(program.bucket_arn, REF.user_id),),
        STATES: program.roles[STATE_MACHINE].policies,
    }
    work = tmp_path_factory.mktemp("iam-shards")
    with IamMoto(REGION) as moto, pytest.MonkeyPatch.context() as patch:
        _isolate(patch, moto.endpoint, work)
        setup = moto.client("s3")
        setup.create_bucket(Bucket=program.bucket)
        setup.put_object(Bucket=program.bucket, Key=BACKGROUND, Body=b"loop")
        users = {
            name: moto.create_user(f"klippers-{name}", documents[name])
            for name in (SHARD, PARENT, PERSON)
        }
        moto.enforce(moto.create_user("nobody", []))
        run = Flow(program, documents, users, CallRecorder(), moto)
        _run(run, patch, work)
        yield run


def _run(flow: Flow, patch: pytest.MonkeyPatch, work: Path) -> None:
    """Upload, plan, both windows, the parent; each with its principal's credentials."""
    acting = {"name": ""}
    real = storage_module._s3_client

    def recorded(endpoint_url: str | None, max_attempts: int) -> Any:
        return flow.recorder.attach(real(endpoint_url, max_attempts), acting["name"])

    patch.setattr(storage_module, "_s3_client", recorded)
    patch.setattr(shard, "shard_count_for", lambda duration: 2)

    def act_as(name: str) -> None:
        for key, value in flow.users[name].env().items():
            patch.setenv(key, value)
        acting["name"] = name

    env = {**REF.env(), ENV_BUCKET: flow.program.bucket, ENV_WORKDIR: str(work / "jobs")}
    act_as(PERSON)
    clients = Clients.connect(REGION)
    flow.recorder.attach(clients.s3, PERSON)
    store = clients.warehouse(flow.program.bucket)
    warehouse.upload(store, talk_video(), REF, warehouse.ConfigChanges(shorts=1, short_seconds=20))
    act_as(SHARD)
    out = flow.outcomes
    out["plan"] = shard.run_job({**env, ENV_SHARD: "plan"})
    out["windows"] = [shard.run_job({**env, ENV_SHARD: str(n)}) for n in (1, 2)]
    out["window again"] = shard.run_job({**env, ENV_SHARD: "2"})
    act_as(PARENT)
    patch.setattr(parent, "load_transcriber", lambda *a: pytest.fail("not merged"))
    out["parent"] = parent.run_job(env)
    out["keys"] = S3Storage(
        flow.program.bucket, client=flow.moto.client("s3", flow.users[PERSON])
    ).list(REF.prefix)


def _state_machine_reads(flow: Flow) -> list[Call]:
    """The S3 reads of the deployed definition's getObject states, for ``REF``."""
    machine, _ = flow.program.run.mocks.one("aws:sfn/stateMachine:StateMachine")
    reads = []
    for state in all_states(json.loads(machine["definition"])).values():
        if state.get("Resource") != S3_GET_OBJECT:
            continue
        parameters = state["Parameters"]
        template = re.fullmatch(
            r"States\.Format\('([^']*)', \$\.\w+, \$\.\w+\)", parameters["Key.$"]
        )
        assert template, parameters["Key.$"]
        key = template.group(1).replace("{}", REF.user_id, 1).replace("{}", REF.video_id, 1)
        reads.append(Call(STATES, "GetObject", {"Bucket": parameters["Bucket"], "Key": key}, 200))
    return reads


def test_two_windows_are_transcribed_and_merged_under_the_generated_policies(flow: Flow) -> None:
    out = flow.outcomes
    assert out["plan"].shard_count == 2
    assert out["windows"] == [False, False]
    assert out["window again"] is True
    assert out["parent"].segment_count == 1
    assert {REF.shard_plan, REF.shard_words(1), REF.shard_words(2)} <= set(out["keys"])
    assert [str(c) for c in flow.recorder.calls if c.status == 403] == []


def test_every_call_is_allowed_with_aws_semantics(flow: Flow) -> None:
    calls = [*flow.recorder.calls, *_state_machine_reads(flow)]
    assert {c.principal for c in calls} == {SHARD, PARENT, PERSON, STATES}
    assert flow.refused(calls) == []


def test_the_state_machine_reads_the_config_and_the_plan_only(flow: Flow) -> None:
    keys = sorted(c.params["Key"] for c in _state_machine_reads(flow))
    assert keys == sorted([REF.shorts_config, REF.shard_plan])
    (document,) = flow.documents[STATES]
    without = {
        **document,
        "Statement": [s for s in document["Statement"] if s["Sid"] != "ReadShardPlan"],
    }
    findings = check_calls(_state_machine_reads(flow), {STATES: (without,)}, Bucket(REGION))
    assert [f.call.params["Key"] for f in findings] == [REF.shard_plan]
    elsewhere = Call(
        STATES, "GetObject", {"Bucket": flow.program.bucket, "Key": REF.original_words}, 200
    )
    assert check_calls([elsewhere], flow.documents, Bucket(REGION))


def test_every_statement_of_the_shard_role_is_needed(flow: Flow) -> None:
    assert flow.unneeded_statements(SHARD) == []


@pytest.mark.parametrize(
    ("attempt", "action"),
    [
        (lambda s: s.write_bytes(REF.segment_srt(1), b"x"), "s3:PutObject"),
        (lambda s: s.write_bytes(REF.original_words, b"{}"), "s3:PutObject"),
        (lambda s: s.delete(REF.original_video), "s3:DeleteObject"),
        (lambda s: s.delete(REF.shard_words(1)), "s3:DeleteObject"),
        (lambda s: s.read_bytes(BACKGROUND), "s3:GetObject"),
    ],
)
def test_moto_refuses_the_shard_role_outside_its_windows(
    flow: Flow, attempt: Any, action: str
) -> None:
    with pytest.raises(StoragePermissionError, match=f"needs {action} on "):
        attempt(flow.storage(SHARD))
