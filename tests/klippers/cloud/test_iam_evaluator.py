"""The AWS policy evaluator of the IAM tests, on small cases: it must refuse what AWS refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import REGION
from tests.support.iam_policy import (
    AuthRequest,
    Bucket,
    Call,
    CallRecorder,
    Decision,
    Principal,
    check_calls,
    evaluate,
    s3_requests,
)

BUCKET = "warehouse-bucket"
ARN = f"arn:aws:s3:::{BUCKET}"
KEY = "arn:aws:kms:us-east-1:123456789012:key/abcd"
USER = "arn:aws:iam::123456789012:user/alice"


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    return {"Version": "2012-10-17", "Statement": [statement]}


READER = allow("s3:GetObject", f"{ARN}/in/*")
LISTER = allow("s3:ListBucket", ARN, Condition={"StringLike": {"s3:prefix": ["in/*"]}})
TLS_ONLY = {
    "Statement": {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [ARN, f"{ARN}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
}


def call(operation: str, status: int = 200, **params: Any) -> Call:
    return Call("alice", operation, {"Bucket": BUCKET, **params}, status)


# --- statements ---------------------------------------------------------------------------


def test_actions_match_case_insensitively_with_wildcards() -> None:
    read = AuthRequest("s3:GetObject", f"{ARN}/in/a")
    assert evaluate(read, [allow("S3:getobject", f"{ARN}/in/*")]).allowed
    assert evaluate(read, [allow("s3:Get*", f"{ARN}/in/*")]).allowed
    assert evaluate(read, [allow(["s3:Put*", "s3:GetObjec?"], f"{ARN}/in/*")]).allowed
    assert not evaluate(read, [allow("s3:GetObjectAcl", f"{ARN}/in/*")]).allowed
    assert not evaluate(read, [allow("s3:Put*", f"{ARN}/in/*")]).allowed


def test_resources_match_case_sensitively_and_star_crosses_slashes() -> None:
    policy = allow("s3:GetObject", f"{ARN}/in/*/x.json")
    assert evaluate(AuthRequest("s3:GetObject", f"{ARN}/in/a/b/x.json"), [policy]).allowed
    assert not evaluate(AuthRequest("s3:GetObject", f"{ARN}/In/a/x.json"), [policy]).allowed
    assert not evaluate(AuthRequest("s3:GetObject", f"{ARN}/in/a/x.jsonl"), [policy]).allowed


def test_not_action_and_not_resource_invert_the_match() -> None:
    policy = {
        "Statement": [
            {"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": f"{ARN}/secret/*"}
        ]
    }
    assert evaluate(AuthRequest("s3:GetObject", f"{ARN}/in/a"), [policy]).allowed
    assert not evaluate(AuthRequest("s3:DeleteObject", f"{ARN}/in/a"), [policy]).allowed
    assert not evaluate(AuthRequest("s3:GetObject", f"{ARN}/secret/a"), [policy]).allowed


def test_nothing_allows_by_default_and_a_deny_wins() -> None:
    read = AuthRequest("s3:GetObject", f"{ARN}/in/a", {"aws:SecureTransport": "false"})
    assert evaluate(read, []) is Decision.IMPLICIT_DENY
    assert evaluate(read, [READER]) is Decision.ALLOWED
    assert evaluate(read, [READER], [TLS_ONLY], Principal(arn=USER)) is Decision.EXPLICIT_DENY
    secure = AuthRequest("s3:GetObject", f"{ARN}/in/a", {"aws:SecureTransport": "true"})
    assert evaluate(secure, [READER], [TLS_ONLY], Principal(arn=USER)) is Decision.ALLOWED


def test_resource_policies_apply_only_to_their_principals() -> None:
    grant = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "s3:GetObject",
                "Resource": f"{ARN}/*",
            }
        ]
    }
    read = AuthRequest("s3:GetObject", f"{ARN}/x")
    assert evaluate(read, [], [grant], Principal(arn=USER)).allowed
    stranger = Principal(arn="arn:aws:iam::999999999999:user/eve")
    assert not evaluate(read, [], [grant], stranger).allowed
    with pytest.raises(NotImplementedError, match="NotPrincipal"):
        evaluate(read, [], [{"Statement": [{"Effect": "Deny", "NotPrincipal": "x"}]}])


# --- conditions ---------------------------------------------------------------------------


def _holds(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    policy = allow("s3:ListBucket", ARN, Condition=condition)
    return evaluate(AuthRequest("s3:ListBucket", ARN, context), [policy]).allowed


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        ({"StringLike": {"s3:prefix": ["in/*"]}}, {"s3:prefix": "in/a/b"}, True),
        ({"StringLike": {"s3:prefix": ["in/*"]}}, {"s3:prefix": "out/a"}, False),
        ({"StringLike": {"s3:prefix": ["in/*"]}}, {}, False),  # missing key: no match
        ({"StringLike": {"s3:prefix": ["in/*", "bg/*"]}}, {"s3:prefix": "bg/x"}, True),
        ({"StringEquals": {"s3:prefix": "in/"}}, {"s3:prefix": "in/a"}, False),
        ({"StringEqualsIgnoreCase": {"s3:prefix": "IN/"}}, {"s3:prefix": "in/"}, True),
        ({"StringNotEquals": {"s3:prefix": "in/"}}, {"s3:prefix": "in/"}, False),
        ({"StringNotEquals": {"s3:prefix": "in/"}}, {}, True),  # negated: missing holds
        ({"StringNotLike": {"s3:prefix": "in/*"}}, {"s3:prefix": "out/"}, True),
        ({"StringLikeIfExists": {"s3:prefix": "in/*"}}, {}, True),
        ({"StringLikeIfExists": {"s3:prefix": "in/*"}}, {"s3:prefix": "out/"}, False),
        ({"Null": {"s3:prefix": "true"}}, {}, True),
        ({"Null": {"s3:prefix": "false"}}, {}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, {}, False),
        ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "1"}, True),
        ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "11"}, False),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:ecs:eu-west-1:123456789012:*"}},
            {"aws:SourceArn": "arn:aws:ecs:eu-west-1:123456789012:task/c/1"},
            True,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:ecs:eu-west-1:123456789012:*"}},
            {"aws:SourceArn": "arn:aws:ecs:eu-west-1:999999999999:task/c/1"},
            False,
        ),
        (
            # ARN components are matched one by one: "*" stays inside its component.
            {"ArnLike": {"aws:SourceArn": "arn:aws:ecs:*:123456789012:*"}},
            {"aws:SourceArn": "arn:aws:ecs:eu-west-1:999:123456789012:x"},
            False,
        ),
        ({"ForAnyValue:StringEquals": {"k": ["a", "b"]}}, {"k": ["c", "b"]}, True),
        ({"ForAllValues:StringEquals": {"k": ["a", "b"]}}, {"k": ["a", "c"]}, False),
        ({"ForAllValues:StringEquals": {"k": ["a"]}}, {}, True),
        ({"ForAnyValue:StringEquals": {"k": ["a"]}}, {}, False),
        (  # every key and every operator must hold
            {"StringLike": {"s3:prefix": "in/*", "s3:delimiter": "/"}},
            {"s3:prefix": "in/a"},
            False,
        ),
        (
            {"StringLike": {"s3:prefix": "${aws:username}/*"}},
            {"s3:prefix": "alice/x", "aws:username": "alice"},
            True,
        ),
        (
            {"StringLike": {"s3:prefix": "${aws:username}/*"}},
            {"s3:prefix": "bob/x", "aws:username": "alice"},
            False,
        ),
    ],
)
def test_conditions_follow_aws(
    condition: dict[str, Any], context: dict[str, Any], holds: bool
) -> None:
    assert _holds(condition, context) is holds


def test_unknown_operators_are_refused_loudly() -> None:
    with pytest.raises(ValueError, match="unknown condition operator"):
        _holds({"StringSortOf": {"k": "v"}}, {"k": "v"})


def test_a_trust_policy_with_source_conditions_admits_only_its_account() -> None:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": "123456789012"},
                    "ArnLike": {"aws:SourceArn": "arn:aws:ecs:eu-west-1:123456789012:*"},
                },
            }
        ]
    }
    role = "arn:aws:iam::123456789012:role/job"
    ecs = Principal(service="ecs-tasks.amazonaws.com")

    def assume(account: str, principal: Principal = ecs) -> bool:
        context = {
            "aws:SourceAccount": account,
            "aws:SourceArn": f"arn:aws:ecs:eu-west-1:{account}:task/c/1",
        }
        request = AuthRequest("sts:AssumeRole", role, context)
        return evaluate(request, [], [trust], principal).allowed

    assert assume("123456789012")
    assert not assume("999999999999")
    assert not assume("123456789012", Principal(service="lambda.amazonaws.com"))


# --- S3 calls -----------------------------------------------------------------------------


def test_an_ungranted_call_is_a_finding() -> None:
    calls = [call("GetObject", Key="in/a"), call("DeleteObject", 204, Key="in/a")]
    (finding,) = check_calls(calls, {"alice": [READER]}, Bucket(REGION))
    assert finding.request == AuthRequest(
        "s3:DeleteObject", f"{ARN}/in/a", {"aws:SecureTransport": "true"}
    )
    assert finding.decision is Decision.IMPLICIT_DENY
    assert "alice: DeleteObject s3://warehouse-bucket/in/a" in str(finding)


def test_a_call_moto_refused_is_a_finding() -> None:
    (finding, *_) = check_calls(
        [call("GetObject", 403, Key="out/a")], {"alice": []}, Bucket(REGION)
    )
    assert "moto refused it" in str(finding)


def test_a_missing_key_is_403_without_listing_rights() -> None:
    missing = [call("HeadObject", 404, Key="in/none"), call("GetObject", 404, Key="in/none")]
    findings = check_calls(missing, {"alice": [READER, LISTER]}, Bucket(REGION))
    assert len(findings) == 2
    assert all("AWS answers 403 AccessDenied, not 404" in str(f) for f in findings)
    assert {f.request.action for f in findings} == {"s3:ListBucket"}
    anywhere = allow("s3:ListBucket", ARN)
    assert check_calls(missing, {"alice": [READER, anywhere]}, Bucket(REGION)) == []
    present = [call("HeadObject", 200, Key="in/a")]
    assert check_calls(present, {"alice": [READER]}, Bucket(REGION)) == []


def test_listing_passes_its_prefix_to_the_conditions() -> None:
    inside = call("ListObjectsV2", Prefix="in/a.mp4", MaxKeys=1)
    outside = call("ListObjectsV2", Prefix="out/")
    everything = call("ListObjectsV2")
    assert s3_requests(inside, Bucket(REGION))[0].context == {
        "aws:SecureTransport": "true",
        "s3:prefix": "in/a.mp4",
        "s3:max-keys": "1",
    }
    policies = {"alice": [LISTER]}
    assert check_calls([inside], policies, Bucket(REGION)) == []
    assert len(check_calls([outside, everything], policies, Bucket(REGION))) == 2


def test_an_sse_kms_bucket_needs_the_key_for_writes_reads_and_multipart_steps() -> None:
    bucket = Bucket(REGION, kms_key_arn=KEY)

    def kms(c: Call) -> list[str]:
        return [r.action for r in s3_requests(c, bucket) if r.action.startswith("kms:")]

    assert kms(call("PutObject", Key="in/a")) == ["kms:GenerateDataKey"]
    assert kms(call("GetObject", Key="in/a")) == ["kms:Decrypt"]
    assert kms(call("GetObject", 404, Key="in/a")) == []
    assert kms(call("HeadObject", Key="in/a")) == []
    assert kms(call("UploadPart", Key="in/a")) == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert kms(call("ListObjectsV2", Prefix="in/")) == []
    via = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    key_use = allow(["kms:GenerateDataKey", "kms:Decrypt"], KEY, Condition=via)
    writer = allow("s3:PutObject", f"{ARN}/in/*")
    put = [call("PutObject", Key="in/a")]
    assert [f.request.action for f in check_calls(put, {"alice": [writer]}, bucket)] == [
        "kms:GenerateDataKey"
    ]
    assert check_calls(put, {"alice": [writer, key_use]}, bucket) == []
    other_region = Bucket("eu-west-1", kms_key_arn=KEY)
    assert check_calls(put, {"alice": [writer, key_use]}, other_region)


def test_an_unmapped_operation_is_refused_loudly() -> None:
    with pytest.raises(KeyError, match="no IAM mapping for S3 PutBucketPolicy"):
        s3_requests(call("PutBucketPolicy"), Bucket(REGION))


def test_the_recorder_sees_every_call_with_its_status(
    aws_env: None, s3_endpoint: str, tmp_path: Path
) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    recorder = CallRecorder()
    recorder.attach(client, "alice")
    name = f"recorder-{tmp_path.name.lower().replace('_', '-')}"[:60]
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="in/a", Body=b"x")
    with pytest.raises(client.exceptions.ClientError):
        client.head_object(Bucket=name, Key="in/none")
    source = tmp_path / "f"
    source.write_bytes(b"y")
    client.upload_file(str(source), name, "in/b")  # a managed transfer, from a worker thread
    seen = [(c.operation, c.params.get("Key"), c.status) for c in recorder.of("alice")]
    assert seen == [
        ("CreateBucket", None, 200),
        ("PutObject", "in/a", 200),
        ("HeadObject", "in/none", 404),
        ("PutObject", "in/b", 200),
    ]
