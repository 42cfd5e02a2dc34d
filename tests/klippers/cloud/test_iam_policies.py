"""The policy documents, decided by the AWS evaluator on the keys the jobs and users touch.

What each principal may do is checked key by key (not by comparing JSON), so a document
that reads well but grants the wrong thing fails here. The program-level tests run the
Pulumi program under mocks and check that its roles hold exactly these documents.
"""

from __future__ import annotations

from typing import Any

import pytest

from klippers.contract import CHILD_JOB_MODULE, PARENT_JOB_MODULE, VideoRef
from tests.infra.test_infra import assert_least_privilege
from tests.support.iam_policy import AuthRequest, Principal, evaluate
from tests.support.iam_program import ProgramPolicies, policies, program_policies

BUCKET_ARN = "arn:aws:s3:::warehouse-bucket"
REF = VideoRef("alice", "talk")
BOB = VideoRef("bob", "talk")
BACKGROUND = "backgrounds/loop.mp4"
ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/0f0f0f0f-1111-2222-3333-444455556666"
CLUSTER = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/klippers-dev"

PARENT = policies.task_role_policy(BUCKET_ARN, "parent")
CHILD = policies.task_role_policy(BUCKET_ARN, "child")
ALICE = policies.warehouse_user_policy(BUCKET_ARN, REF.user_id)

INPUTS = (REF.original_video, REF.shorts_config, REF.thumbnail)
TRANSCRIPT = (REF.original_srt, REF.original_txt, REF.original_words)
REPLACED = (
    REF.manifest,
    REF.transcript_recipe,
    REF.thumbnail_recipe,
    REF.segment_video(2),
    REF.segment_srt(2),
    REF.segment_words(2),
    REF.short_video(2),
    REF.short_recipe(2),
)


def can(document: dict[str, Any], action: str, key: str | None = None, **context: str) -> bool:
    """Whether ``document`` allows ``action`` on ``key`` (the bucket when None), over TLS."""
    resource = BUCKET_ARN if key is None else f"{BUCKET_ARN}/{key}"
    request = AuthRequest(action, resource, {"aws:SecureTransport": "true", **context})
    return evaluate(request, [document]).allowed


def lists(document: dict[str, Any], prefix: str) -> bool:
    return can(document, "s3:ListBucket", **{"s3:prefix": prefix})


# --- task roles ---------------------------------------------------------------------------


def test_the_parent_deletes_only_what_a_rerun_replaces() -> None:
    assert [k for k in REPLACED if not can(PARENT, "s3:DeleteObject", k)] == []
    kept = (*INPUTS, *TRANSCRIPT, BACKGROUND, "elsewhere/original.mp4")
    assert [k for k in kept if can(PARENT, "s3:DeleteObject", k)] == []


def test_the_child_writes_only_shorts_and_deletes_only_their_recipes() -> None:
    assert can(CHILD, "s3:PutObject", REF.short_video(1))
    assert can(CHILD, "s3:PutObject", REF.short_recipe(1))
    assert can(CHILD, "s3:DeleteObject", REF.short_recipe(1))
    written = (*INPUTS, REF.manifest, REF.segment_video(1), BACKGROUND)
    assert [k for k in written if can(CHILD, "s3:PutObject", k)] == []
    deleted = (*REPLACED[:-2], REF.short_video(1), *INPUTS)
    assert [k for k in deleted if can(CHILD, "s3:DeleteObject", k)] == []


def test_only_the_child_reads_the_shared_backgrounds() -> None:
    assert can(CHILD, "s3:GetObject", BACKGROUND)
    assert can(CHILD, "s3:GetObject", "backgrounds/loops/rain.mp4")
    assert lists(CHILD, BACKGROUND)
    assert not can(PARENT, "s3:GetObject", BACKGROUND)
    assert not lists(PARENT, BACKGROUND)
    for document in (PARENT, CHILD):
        assert can(document, "s3:GetObject", REF.segment_video(1))
        assert not can(document, "s3:GetObject", "elsewhere/secret.mp4")


def test_listing_is_allowed_only_below_the_prefixes_read() -> None:
    for document in (PARENT, CHILD):
        assert lists(document, REF.prefix)
        assert lists(document, REF.manifest)  # the storage's "does this key exist?"
        assert not lists(document, "")
        assert not lists(document, "elsewhere/")
        assert not can(document, "s3:ListBucket")  # no prefix: what a read of a missing key needs


def test_the_user_reaches_only_their_own_folder() -> None:
    for action in ("s3:GetObject", "s3:PutObject"):
        assert can(ALICE, action, REF.original_video)
        assert not can(ALICE, action, BOB.original_video)
        assert not can(ALICE, action, BACKGROUND)
    assert lists(ALICE, REF.prefix)
    assert not lists(ALICE, BOB.prefix)
    assert not lists(ALICE, "klippers_warehouse/")
    assert not can(ALICE, "s3:DeleteObject", REF.short_video(1))
    operator = policies.warehouse_user_policy(BUCKET_ARN)
    assert can(operator, "s3:GetObject", BOB.short_video(1))
    assert lists(operator, BOB.prefix)
    with pytest.raises(ValueError, match="user_id"):
        policies.warehouse_user_policy(BUCKET_ARN, "alice/../bob")


# --- KMS ----------------------------------------------------------------------------------


def test_the_warehouse_key_is_usable_only_through_s3_in_its_region() -> None:
    parent = policies.task_role_policy(BUCKET_ARN, "parent", kms_key_arn=KEY)
    child = policies.task_role_policy(BUCKET_ARN, "child", kms_key_arn=KEY)
    user = policies.warehouse_user_policy(BUCKET_ARN, "alice", kms_key_arn=KEY)
    via_s3 = {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}

    def uses(document: dict[str, Any], action: str, **context: str) -> bool:
        return evaluate(AuthRequest(action, KEY, context), [document]).allowed

    for document in (parent, child, user):
        assert uses(document, "kms:GenerateDataKey", **via_s3)
        assert uses(document, "kms:Decrypt", **via_s3)
        assert not uses(document, "kms:Decrypt")  # directly, not through S3
        assert not uses(document, "kms:Decrypt", **{"kms:ViaService": "s3.us-east-1.amazonaws.com"})
        assert not uses(document, "kms:Encrypt", **via_s3)
        assert_least_privilege(document)
    assert not any(uses(d, "kms:Decrypt", **via_s3) for d in (PARENT, CHILD, ALICE))


def test_only_a_key_arn_names_the_warehouse_key() -> None:
    alias = f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/warehouse"
    for wrong in (alias, BUCKET_ARN):
        with pytest.raises(ValueError, match="kmsKeyArn: must be a KMS key ARN"):
            policies.task_role_policy(BUCKET_ARN, "parent", kms_key_arn=wrong)
    china = "arn:aws-cn:kms:cn-north-1:123456789012:key/k"
    (statement,) = policies.kms_statement(china, ["kms:Decrypt"])["Condition"].values()
    assert statement == {"kms:ViaService": "s3.cn-north-1.amazonaws.com.cn"}


def test_the_state_machine_may_only_decrypt_with_the_key() -> None:
    document = policies.state_machine_policy(
        cluster_arn=CLUSTER,
        task_definition_arns=[f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/p:1"],
        passable_role_arns=[f"arn:aws:iam::{ACCOUNT}:role/r"],
        bucket_arn=BUCKET_ARN,
        kms_key_arn=KEY,
    )
    via_s3 = {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    assert evaluate(AuthRequest("kms:Decrypt", KEY, via_s3), [document]).allowed
    assert not evaluate(AuthRequest("kms:GenerateDataKey", KEY, via_s3), [document]).allowed


# --- trust --------------------------------------------------------------------------------


def _assumes(trust: dict[str, Any], service: str, source_arn: str) -> bool:
    account = source_arn.split(":")[4]
    context = {"aws:SourceAccount": account, "aws:SourceArn": source_arn}
    request = AuthRequest("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/job", context)
    return evaluate(request, [], [trust], Principal(service=service)).allowed


def test_ecs_task_roles_trust_only_tasks_of_their_account_and_region() -> None:
    source = policies.ecs_tasks_source(CLUSTER)
    assert source == f"arn:aws:ecs:eu-west-1:{ACCOUNT}:*"
    trust = policies.assume_role_policy(policies.ECS_TASKS_SERVICE, source)
    (statement,) = trust["Statement"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": source},
    }
    task = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task/klippers-dev/0abc"
    assert _assumes(trust, policies.ECS_TASKS_SERVICE, task)
    assert not _assumes(trust, policies.ECS_TASKS_SERVICE, task.replace(ACCOUNT, "999999999999"))
    assert not _assumes(trust, policies.ECS_TASKS_SERVICE, task.replace("eu-west-1", "us-east-1"))
    assert not _assumes(trust, policies.STATES_SERVICE, task)


def test_the_state_machine_role_trusts_only_its_state_machine() -> None:
    source = policies.state_machine_source(CLUSTER, "klippers-dev-video-processing")
    assert source == (
        f"arn:aws:states:eu-west-1:{ACCOUNT}:stateMachine:klippers-dev-video-processing"
    )
    trust = policies.assume_role_policy(policies.STATES_SERVICE, source)
    assert _assumes(trust, policies.STATES_SERVICE, source)
    other = source.replace("klippers-dev-", "klippers-prod-")
    assert not _assumes(trust, policies.STATES_SERVICE, other)


def test_a_trust_condition_needs_a_concrete_account() -> None:
    with pytest.raises(ValueError, match="12-digit account"):
        policies.ecs_tasks_source("arn:aws:ecs:eu-west-1:*:cluster/c")
    with pytest.raises(ValueError, match="12-digit account"):
        policies.assume_role_policy(policies.ECS_TASKS_SERVICE, BUCKET_ARN)


def test_without_a_source_the_trust_policy_is_unchanged() -> None:
    (statement,) = policies.assume_role_policy(policies.ECS_TASKS_SERVICE)["Statement"]
    assert "Condition" not in statement


# --- the program --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def program() -> ProgramPolicies:
    return program_policies()


def test_the_program_gives_each_job_role_exactly_its_policy(program: ProgramPolicies) -> None:
    arn = program.bucket_arn
    assert program.roles[PARENT_JOB_MODULE].policies == (policies.task_role_policy(arn, "parent"),)
    assert program.roles[CHILD_JOB_MODULE].policies == (policies.task_role_policy(arn, "child"),)
    for role in program.roles.values():
        for document in role.policies:
            assert_least_privilege(document)
