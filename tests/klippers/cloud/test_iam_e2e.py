"""The real jobs and ``klip cloud``'s storage side, under exactly the generated IAM policies.

moto's server enforces IAM (:mod:`tests.support.moto_iam`); each principal is an IAM user
holding exactly the documents of the Pulumi program (:mod:`tests.support.iam_program`):
the parent's and the child's task role policies, and for the person running ``klip
cloud`` the warehouse user policy of the program's bucket. Every S3 call of the run is
recorded and decided again with AWS's semantics (:mod:`tests.support.iam_policy`), which
moto does not apply: conditions, and 403 rather than 404 for a read of a missing key by a
caller who may not list it.

The run: upload with ``klip cloud``'s storage code and a shared background, parent,
children, status and download, a re-run of both jobs (nothing to do), then fewer shorts
(the parent removes the stale ones) and a last child, status and download.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import klipmedia
from klippers import storage as storage_module
from klippers.cloud import warehouse
from klippers.cloud.clients import Clients
from klippers.cloud.executions import execution_status
from klippers.contract import (
    CHILD_JOB_MODULE,
    ENV_BUCKET,
    ENV_SEGMENT,
    PARENT_JOB_MODULE,
    VideoRef,
)
from klippers.jobs import child, parent
from klippers.jobs.runner import ENV_WORKDIR, JobEnvironment, scratch
from klippers.statemachine import execution_input
from klippers.storage import S3Storage, StoragePermissionError
from tests.conftest import REGION
from tests.support.iam_policy import Bucket, Call, CallRecorder, Principal, check_calls
from tests.support.iam_program import ProgramPolicies, policies, program_policies
from tests.support.moto_iam import Credentials, IamMoto
from tests.support.talk import talk_video
from tests.support.whisper_models import ct2_tiny_en_path

pytestmark = pytest.mark.slow

Document = Mapping[str, Any]

REF = VideoRef("alice", "talk")
OTHER = VideoRef("bob", "private")
BACKGROUND = "backgrounds/loop.mp4"
PARENT, CHILD, PERSON = "parent", "child", "alice"
FAST = klipmedia.EncodeSettings(preset="ultrafast")
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:klippers-video-processing:run-1"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0f0f0f0f-1111-2222-3333-444455556666"


@dataclass
class Flow:
    """The run: who holds which documents, every recorded call, and what the steps returned."""

    program: ProgramPolicies
    documents: dict[str, tuple[Document, ...]]
    users: dict[str, Credentials]
    recorder: CallRecorder
    moto: IamMoto
    outcomes: dict[str, Any] = field(default_factory=dict)

    def principals(self) -> dict[str, Principal]:
        return {name: Principal(arn=user.arn) for name, user in self.users.items()}

    def refused(self, calls: Sequence[Call]) -> list[str]:
        """The calls AWS would refuse under the principals' documents and the bucket's
        policies, with AWS's semantics."""
        findings = check_calls(
            calls,
            self.documents,
            Bucket(REGION),
            bucket_policies=self.program.bucket_policies,
            principals=self.principals(),
        )
        return [str(f) for f in findings]

    def unneeded_statements(self, name: str) -> list[str]:
        """The statements of ``name``'s document without which no call of the run is refused."""
        calls = self.recorder.of(name)
        (document,) = self.documents[name]
        unneeded = []
        for statement in document["Statement"]:
            others = [s for s in document["Statement"] if s is not statement]
            less = {name: ({**document, "Statement": others},)}
            if not check_calls(calls, less, Bucket(REGION)):
                unneeded.append(statement["Sid"])
        return unneeded

    def storage(self, name: str) -> S3Storage:
        """An unrecorded warehouse client acting as ``name`` (for probing refusals)."""
        return S3Storage(self.program.bucket, client=self.moto.client("s3", self.users[name]))


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory, stepped_background: Path) -> Iterator[Flow]:
    program = program_policies()
    documents = {
        PARENT: program.roles[PARENT_JOB_MODULE].policies,
        CHILD: program.roles[CHILD_JOB_MODULE].policies,
        PERSON: (policies.warehouse_user_policy(program.bucket_arn, REF.user_id),),
    }
    work = tmp_path_factory.mktemp("iam-e2e")
    with IamMoto(REGION) as moto, pytest.MonkeyPatch.context() as patch:
        _isolate(patch, moto.endpoint, work)
        setup = moto.client("s3")
        setup.create_bucket(Bucket=program.bucket)
        setup.upload_file(str(stepped_background), program.bucket, BACKGROUND)
        setup.put_object(Bucket=program.bucket, Key=OTHER.shorts_config, Body=b"{}")
        users = {
            name: moto.create_user(f"klippers-{name}", docs) for name, docs in documents.items()
        }
        moto.enforce(moto.create_user("nobody", []))
        run = Flow(program, documents, users, CallRecorder(), moto)
        _Steps(run, patch, work).run()
        yield run


def _isolate(patch: pytest.MonkeyPatch, endpoint: str, work: Path) -> None:
    """No real AWS config, the moto endpoint, the offline ASR model."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            patch.delenv(name)
    patch.delenv(ENV_BUCKET, raising=False)
    patch.setenv("AWS_ENDPOINT_URL", endpoint)
    patch.setenv("AWS_DEFAULT_REGION", REGION)
    patch.setenv("AWS_CONFIG_FILE", str(work / "no-aws-config"))
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(work / "no-aws-credentials"))
    patch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))


class _FinishedExecution:
    """Step Functions' answer for a finished execution of ``ref`` (``status`` reads the
    warehouse for the rest)."""

    def __init__(self, ref: VideoRef) -> None:
        self.ref = ref

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "executionArn": executionArn,
            "name": executionArn.rpartition(":")[2],
            "status": "SUCCEEDED",
            "startDate": now,
            "stopDate": now,
            "input": json.dumps(execution_input(self.ref)),
        }


class _Steps:
    """The run, each step with the credentials of the principal that does it in the cloud."""

    def __init__(self, flow: Flow, patch: pytest.MonkeyPatch, work: Path) -> None:
        self.flow, self.patch, self.work = flow, patch, work
        self.acting = ""
        self.env = {
            **REF.env(),
            ENV_BUCKET: flow.program.bucket,
            ENV_WORKDIR: str(work / "jobs"),
        }
        real = storage_module._s3_client

        def recorded(endpoint_url: str | None, max_attempts: int) -> Any:
            return flow.recorder.attach(real(endpoint_url, max_attempts), self.acting)

        patch.setattr(storage_module, "_s3_client", recorded)

    def act_as(self, name: str) -> None:
        for key, value in self.flow.users[name].env().items():
            self.patch.setenv(key, value)
        self.acting = name

    def person(self) -> S3Storage:
        """The warehouse as ``klip cloud`` opens it (its S3 client recorded)."""
        self.act_as(PERSON)
        clients = Clients.connect(REGION)
        self.flow.recorder.attach(clients.s3, PERSON)
        return clients.warehouse(self.flow.program.bucket)

    def configure(self, store: S3Storage, shorts: int) -> None:
        """Upload as ``klip cloud upload --background backgrounds/...`` does (merging)."""
        changes = warehouse.ConfigChanges(shorts=shorts, short_seconds=20, background=BACKGROUND)
        warehouse.upload(store, talk_video(), REF, changes)
        warehouse.check_inputs(store, REF)

    def parent(self) -> parent.ParentResult:
        self.act_as(PARENT)
        return parent.run_job(self.env)

    def child(self, n: int) -> child.ChildResult:
        self.act_as(CHILD)
        job = JobEnvironment.from_env({**self.env, ENV_SEGMENT: str(n)})
        with scratch(job.workdir) as folder:
            return child.run_child(job.ref, n, job.storage(), Path(folder), encode=FAST)

    def look(self, name: str) -> None:
        store = self.person()
        out = self.flow.outcomes
        out[f"{name}.status"] = execution_status(_FinishedExecution(REF), store, EXECUTION)
        out[f"{name}.download"] = warehouse.download(store, REF, self.work / "shorts")
        out[f"{name}.keys"] = store.list(REF.prefix)

    def run(self) -> None:
        out = self.flow.outcomes
        self.configure(self.person(), shorts=2)
        out["parent"] = self.parent()
        out["children"] = [self.child(n) for n in (1, 2)]
        self.look("first")
        out["parent again"] = self.parent()
        out["child again"] = self.child(1)
        self.configure(self.person(), shorts=1)
        out["parent fewer"] = self.parent()
        out["child fewer"] = self.child(1)
        self.look("last")


# --- the run ------------------------------------------------------------------------------


def test_the_pipeline_runs_under_exactly_the_generated_policies(flow: Flow) -> None:
    out = flow.outcomes
    assert (out["parent"].segment_count, out["parent"].reused) == (2, False)
    assert [c.reused for c in out["children"]] == [False, False]
    assert out["first.status"].shorts == (REF.short_video(1), REF.short_video(2))
    assert sorted(p.name for p in out["first.download"].written) == [
        "important_segments_videos.json",
        "segment_1.srt",
        "segment_1_cropped_stacked.mp4",
        "segment_2.srt",
        "segment_2_cropped_stacked.mp4",
    ]
    assert out["parent again"].reused
    assert out["child again"].reused
    assert out["parent fewer"].segment_count == 1
    stale = {REF.segment_video(2), REF.short_video(2), REF.short_recipe(2)}
    assert not stale & set(out["last.keys"]), "the parent removed the stale outputs"
    assert out["last.status"].shorts == (REF.short_video(1),)
    refused = [str(c) for c in flow.recorder.calls if c.status == 403]
    assert refused == [], "moto refused calls"


def test_every_call_is_allowed_with_aws_semantics(flow: Flow) -> None:
    calls = flow.recorder.calls
    assert {c.principal for c in calls} == {PARENT, CHILD, PERSON}
    operations = {c.operation for c in calls}
    assert {"ListObjectsV2", "HeadObject", "GetObject", "PutObject", "DeleteObject"} <= operations
    assert any(c.params.get("Key", "").startswith("backgrounds/") for c in calls)
    assert flow.refused(calls) == []


@pytest.mark.parametrize("name", [PARENT, CHILD, PERSON])
def test_every_statement_is_needed_by_the_run(flow: Flow, name: str) -> None:
    """Least privilege, shown by the run: without any one statement some call is refused."""
    assert flow.unneeded_statements(name) == []


def test_moto_refuses_what_the_policies_do_not_grant(flow: Flow) -> None:
    """Each refusal is a StoragePermissionError naming the key and the missing permission."""
    bucket = flow.program.bucket_arn
    refusals = [
        (PERSON, lambda s: s.read_bytes(OTHER.shorts_config), "s3:GetObject", OTHER.shorts_config),
        (CHILD, lambda s: s.write_bytes(REF.segment_srt(1), b"x"), "s3:PutObject", None),
        (CHILD, lambda s: s.delete(REF.short_video(1)), "s3:DeleteObject", None),
        (PARENT, lambda s: s.delete(REF.original_video), "s3:DeleteObject", None),
        (PARENT, lambda s: s.delete(REF.shorts_config), "s3:DeleteObject", None),
        (PARENT, lambda s: s.read_bytes(BACKGROUND), "s3:GetObject", BACKGROUND),
    ]
    for name, attempt, action, key in refusals:
        with pytest.raises(StoragePermissionError) as refused:
            attempt(flow.storage(name))
        message = str(refused.value)
        assert f"needs {action} on {bucket}/" in message, message
        assert key is None or key in message


def test_sse_kms_needs_the_key_in_every_policy(flow: Flow) -> None:
    """The program's documents are the policy functions' (so the functions' ``kms_key_arn``
    is what a ``kmsKeyArn`` config adds); under an SSE-KMS bucket the run needs the key."""
    bucket, arn = Bucket(REGION, kms_key_arn=KMS_KEY), flow.program.bucket_arn
    assert flow.documents[PARENT] == (policies.task_role_policy(arn, "parent"),)
    assert flow.documents[CHILD] == (policies.task_role_policy(arn, "child"),)
    calls = flow.recorder.calls
    without = check_calls(calls, flow.documents, bucket)
    assert {f.request.action for f in without} == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert {f.call.principal for f in without} == {PARENT, CHILD, PERSON}
    granted = _with_key(arn, KMS_KEY)
    assert [str(f) for f in check_calls(calls, granted, bucket)] == []
    elsewhere = Bucket("eu-west-1", kms_key_arn=KMS_KEY)  # kms:ViaService names the region
    assert check_calls(calls, granted, elsewhere)


def _with_key(bucket_arn: str, key: str) -> dict[str, Sequence[Document]]:
    return {
        PARENT: [policies.task_role_policy(bucket_arn, "parent", kms_key_arn=key)],
        CHILD: [policies.task_role_policy(bucket_arn, "child", kms_key_arn=key)],
        PERSON: [policies.warehouse_user_policy(bucket_arn, REF.user_id, kms_key_arn=key)],
    }
