"""AWS policy evaluation for the S3 calls a test recorded, where moto's IAM is weaker.

moto enforces actions and resources but ignores Conditions, and it answers 404 for a
missing key whatever the caller may list. This module records every boto3 call made
through the clients it is attached to (:class:`CallRecorder`: operation, bucket, key or
prefix, HTTP status) and decides each one as AWS would (:func:`check_calls`).

Semantics (the IAM policy evaluation logic for one account):

- A statement applies when its ``Action`` (or ``NotAction``) matches, case-insensitively,
  with ``*`` and ``?`` wildcards; its ``Resource`` (or ``NotResource``) matches,
  case-sensitively, with the same wildcards (``*`` crosses ``/``); its ``Principal``
  matches (resource and trust policies only); and every condition holds.
- An applicable ``Deny`` anywhere wins; otherwise an applicable ``Allow`` in an identity
  policy or a resource policy allows; otherwise the request is implicitly denied.
- Conditions: ``String(Not)Equals(IgnoreCase)``, ``String(Not)Like``, ``Arn(Not)Equals``,
  ``Arn(Not)Like`` (compared per ARN component), ``Bool``, ``Null``, the ``Numeric``
  operators, with ``...IfExists`` and ``ForAnyValue:`` / ``ForAllValues:``. Operators and
  keys of a block must all hold; any one value of a key may match. A key missing from the
  request makes a positive operator false and a negated one (``...Not...``) true.
  ``${aws:username}``-style policy variables are filled from the request context.
- S3: ``HeadObject``/``GetObject`` need ``s3:GetObject`` on the object; when the object
  is missing (moto answered 404) AWS answers 404 only if the caller also has
  ``s3:ListBucket`` on the bucket for a request with no ``s3:prefix``, else 403. Listing
  passes ``s3:prefix``, ``s3:delimiter`` and ``s3:max-keys``; every request passes
  ``aws:SecureTransport``. With a bucket key (SSE-KMS), writes also need
  ``kms:GenerateDataKey``, reads of an object ``kms:Decrypt``, and each multipart upload
  step both, on the key, with ``kms:ViaService`` ``s3.REGION.amazonaws.com``.

Limits: one account, no SCPs, permission boundaries or session policies; no
``NotPrincipal``; the KMS key policy is taken to delegate to IAM (AWS's default key
policy); S3 operations outside :data:`S3_ACTIONS` raise (add them when a job starts using
one); object ACLs, versions, the bucket-owner checks and the other condition keys S3 sets
(``s3:x-amz-*``, ``aws:SourceIp``...) are not modelled, so a policy conditioned on them
is decided as if the key were missing.

Examples
--------
>>> policy = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
...                          "Resource": "arn:aws:s3:::b/in/*"}]}
>>> evaluate(AuthRequest("s3:GetObject", "arn:aws:s3:::b/in/x"), [policy]).allowed
True
>>> evaluate(AuthRequest("s3:GetObject", "arn:aws:s3:::b/out/x"), [policy]).allowed
False
"""

from __future__ import annotations

import copy
import enum
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Document = Mapping[str, Any]
ContextValue = str | Sequence[str]

_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


class Decision(enum.Enum):
    """The outcome of evaluating one request."""

    ALLOWED = "allowed"
    IMPLICIT_DENY = "implicitly denied (no statement allows it)"
    EXPLICIT_DENY = "explicitly denied"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOWED


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an IAM user or role (``arn``) or an AWS service."""

    arn: str | None = None
    service: str | None = None

    @property
    def account(self) -> str | None:
        return self.arn.split(":")[4] if self.arn else None


@dataclass(frozen=True)
class AuthRequest:
    """One authorisation: ``action`` on ``resource`` with the request's condition keys."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


def evaluate(
    request: AuthRequest,
    identity_policies: Sequence[Document],
    resource_policies: Sequence[Document] = (),
    principal: Principal | None = None,
) -> Decision:
    """Decide ``request`` against the caller's identity policies and the resource's
    policies (bucket policy, trust policy), which must name ``principal``."""
    decisions = [
        *(_decide(doc, request, None) for doc in identity_policies),
        *(_decide(doc, request, principal or Principal()) for doc in resource_policies),
    ]
    if Decision.EXPLICIT_DENY in decisions:
        return Decision.EXPLICIT_DENY
    if Decision.ALLOWED in decisions:
        return Decision.ALLOWED
    return Decision.IMPLICIT_DENY


def _decide(doc: Document, request: AuthRequest, principal: Principal | None) -> Decision:
    statements = doc.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    effects = {s["Effect"] for s in statements if _applies(s, request, principal)}
    if "Deny" in effects:
        return Decision.EXPLICIT_DENY
    return Decision.ALLOWED if "Allow" in effects else Decision.IMPLICIT_DENY


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _applies(statement: Document, request: AuthRequest, principal: Principal | None) -> bool:
    if "NotPrincipal" in statement:
        raise NotImplementedError("NotPrincipal is not modelled")
    if principal is not None and not _principal_matches(statement.get("Principal"), principal):
        return False
    if not _element_matches(statement, "Action", request.action, request, fold=True):
        return False
    if not _element_matches(statement, "Resource", request.resource, request, fold=False):
        return False
    return all(
        _condition_holds(operator, block, request.context)
        for operator, block in statement.get("Condition", {}).items()
    )


def _element_matches(
    statement: Document, name: str, value: str, request: AuthRequest, *, fold: bool
) -> bool:
    """``Action``/``NotAction`` or ``Resource``/``NotResource`` against ``value``; a trust
    policy's statements have no ``Resource`` and match any."""
    negated = f"Not{name}"
    if name not in statement and negated not in statement:
        return name == "Resource"
    patterns = _listed(statement.get(name, statement.get(negated)))
    found = any(_glob(_fill(p, request.context), value, fold=fold) for p in patterns)
    return found if name in statement else not found


def _principal_matches(element: Any, principal: Principal) -> bool:
    if element is None:
        raise ValueError("a resource or trust policy statement needs a Principal")
    if element == "*":
        return True
    for kind, values in element.items():
        for value in _listed(values):
            if kind == "Service" and value == principal.service:
                return True
            if kind == "AWS" and _aws_principal_matches(value, principal):
                return True
    return False


def _aws_principal_matches(value: str, principal: Principal) -> bool:
    if value == "*":
        return True
    if principal.arn is None:
        return False
    root = re.fullmatch(r"(?:arn:[^:]+:iam::)?(\d{12})(?::root)?", value)
    if root:
        return root.group(1) == principal.account
    return value == principal.arn


def _glob(pattern: str, value: str, *, fold: bool) -> bool:
    if fold:
        pattern, value = pattern.lower(), value.lower()
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _fill(text: str, context: Mapping[str, ContextValue]) -> str:
    """Replace ``${key}`` policy variables with single-valued context values; an unknown
    variable leaves a pattern that cannot match (the statement does not apply)."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in _ESCAPES:
            return _ESCAPES[key]
        found = context.get(key)
        return found if isinstance(found, str) else "\x00unresolved\x00"

    return _VARIABLE.sub(value, text)


# --- conditions ---------------------------------------------------------------------------


def _string_equals(value: str, pattern: str) -> bool:
    return value == pattern


def _string_equals_folded(value: str, pattern: str) -> bool:
    return value.lower() == pattern.lower()


def _string_like(value: str, pattern: str) -> bool:
    return _glob(pattern, value, fold=False)


def _arn_like(value: str, pattern: str) -> bool:
    values, patterns = value.split(":", 5), pattern.split(":", 5)
    if len(values) != 6 or len(patterns) != 6:
        return False
    return all(_glob(p, v, fold=False) for p, v in zip(patterns, values, strict=True))


def _bool(value: str, pattern: str) -> bool:
    return value.lower() == pattern.lower()


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def check(value: str, pattern: str) -> bool:
        try:
            return compare(float(value), float(pattern))
        except ValueError:
            return False

    return check


_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _string_equals,
    "StringEqualsIgnoreCase": _string_equals_folded,
    "StringLike": _string_like,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": _bool,
    "NumericEquals": _numeric(lambda a, b: a == b),
    "NumericLessThan": _numeric(lambda a, b: a < b),
    "NumericLessThanEquals": _numeric(lambda a, b: a <= b),
    "NumericGreaterThan": _numeric(lambda a, b: a > b),
    "NumericGreaterThanEquals": _numeric(lambda a, b: a >= b),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _condition_holds(
    operator: str, block: Mapping[str, Any], context: Mapping[str, ContextValue]
) -> bool:
    """Every key of ``operator``'s block holds (each against any of its values)."""
    quantifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    if quantifier not in ("", "ForAnyValue", "ForAllValues"):
        raise ValueError(f"unknown condition set operator {quantifier!r}")
    for key, raw in block.items():
        wanted = [_fill(str(v), context) for v in _listed(raw)]
        present = key in context
        if name == "Null":
            if not any(str(w).lower() == str(not present).lower() for w in wanted):
                return False
            continue
        if not present:
            if if_exists or quantifier == "ForAllValues" or name in _NEGATED:
                continue
            return False
        values = _listed(context[key])
        if not _key_holds(name, quantifier, values, wanted):
            return False
    return True


def _key_holds(name: str, quantifier: str, values: list[str], wanted: list[str]) -> bool:
    negated = name in _NEGATED
    matcher = _MATCHERS.get(_NEGATED.get(name, name))
    if matcher is None:
        raise ValueError(f"unknown condition operator {name!r}")

    def one(value: str) -> bool:
        hit = any(matcher(value, w) for w in wanted)
        return not hit if negated else hit

    if quantifier == "ForAllValues":
        return all(one(v) for v in values)
    return any(one(v) for v in values)


# --- S3 calls -----------------------------------------------------------------------------

S3_ACTIONS: Mapping[str, str] = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "CopyObject": "s3:PutObject",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetBucketLocation": "s3:GetBucketLocation",
}
"""The IAM action each S3 operation is authorised as."""
_MULTIPART = frozenset({"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"})
_LIST_CONTEXT = {"Prefix": "s3:prefix", "Delimiter": "s3:delimiter", "MaxKeys": "s3:max-keys"}
_RECORDED = ("Bucket", "Key", "Prefix", "Delimiter", "MaxKeys", "Delete", "CopySource", "VersionId")
"""The parameters a recorded call keeps (not bodies: what authorisation depends on)."""


@dataclass(frozen=True)
class Call:
    """One boto3 call: who made it, the operation, its parameters and the HTTP status."""

    principal: str
    operation: str
    params: Mapping[str, Any]
    status: int | None

    def __str__(self) -> str:
        where = self.params.get("Key", self.params.get("Prefix", ""))
        return f"{self.principal}: {self.operation} s3://{self.params.get('Bucket')}/{where}"


@dataclass(frozen=True)
class Bucket:
    """What AWS knows about the bucket: region, SSE-KMS key, whether requests use TLS."""

    region: str
    kms_key_arn: str | None = None
    secure_transport: bool = True
    partition: str = "aws"


@dataclass(frozen=True)
class Finding:
    """A call AWS would refuse, and why."""

    call: Call
    request: AuthRequest
    decision: Decision
    note: str = ""

    def __str__(self) -> str:
        text = (
            f"{self.call}: {self.request.action} on {self.request.resource} {self.decision.value}"
        )
        return f"{text} ({self.note})" if self.note else text


def s3_requests(call: Call, bucket: Bucket) -> list[AuthRequest]:
    """The authorisations AWS makes for ``call`` (KMS ones included)."""
    action = S3_ACTIONS.get(call.operation)
    if action is None:
        raise KeyError(f"no IAM mapping for S3 {call.operation}: add it to S3_ACTIONS")
    params = call.params
    bucket_arn = f"arn:{bucket.partition}:s3:::{params['Bucket']}"
    base = {"aws:SecureTransport": str(bucket.secure_transport).lower()}
    if action in ("s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation"):
        context = {**base, **{k: str(params[p]) for p, k in _LIST_CONTEXT.items() if p in params}}
        return [AuthRequest(action, bucket_arn, context)]
    keys = [o["Key"] for o in params["Delete"]["Objects"]] if "Delete" in params else []
    keys = keys or [params["Key"]]
    requests = [AuthRequest(action, f"{bucket_arn}/{key}", base) for key in keys]
    if call.operation == "CopyObject":
        source = params["CopySource"]
        source_key = (
            f"{source['Bucket']}/{source['Key']}" if isinstance(source, Mapping) else source
        )
        source_arn = f"arn:{bucket.partition}:s3:::{source_key}"
        requests.append(AuthRequest("s3:GetObject", source_arn, base))
    return requests + _kms_requests(call, bucket, keys)


def _kms_requests(call: Call, bucket: Bucket, keys: list[str]) -> list[AuthRequest]:
    if bucket.kms_key_arn is None:
        return []
    actions: list[str] = []
    if call.operation in ("PutObject", "CopyObject") or call.operation in _MULTIPART:
        actions.append("kms:GenerateDataKey")
    if call.operation in _MULTIPART or (call.operation == "GetObject" and _succeeded(call)):
        actions.append("kms:Decrypt")
    suffix = "amazonaws.com.cn" if bucket.partition == "aws-cn" else "amazonaws.com"
    context = {
        "kms:ViaService": f"s3.{bucket.region}.{suffix}",
        "kms:EncryptionContext:aws:s3:arn": f"arn:{bucket.partition}:s3:::"
        f"{call.params['Bucket']}/{keys[0]}",
    }
    return [AuthRequest(action, bucket.kms_key_arn, context) for action in actions]


def _succeeded(call: Call) -> bool:
    return call.status is not None and call.status < 300


def check_calls(
    calls: Iterable[Call],
    policies: Mapping[str, Sequence[Document]],
    bucket: Bucket,
    *,
    bucket_policies: Sequence[Document] = (),
    principals: Mapping[str, Principal] | None = None,
) -> list[Finding]:
    """Every call that AWS would refuse: denied outright, or a read of a missing key that
    would get 403 because the caller may not list it. ``policies`` maps each call's
    principal to its identity policies; every principal making a call must be there."""
    findings: list[Finding] = []
    for call in calls:
        identity = policies[call.principal]
        who = (principals or {}).get(call.principal, Principal())
        if call.status == 403:
            request = s3_requests(call, bucket)[0]
            findings.append(Finding(call, request, Decision.IMPLICIT_DENY, "moto refused it"))
        for request in s3_requests(call, bucket):
            decision = evaluate(request, identity, bucket_policies, who)
            if not decision.allowed:
                findings.append(Finding(call, request, decision))
        if call.operation in ("HeadObject", "GetObject") and call.status == 404:
            findings.extend(_missing_key(call, identity, bucket, bucket_policies, who))
    return findings


def _missing_key(
    call: Call,
    identity: Sequence[Document],
    bucket: Bucket,
    bucket_policies: Sequence[Document],
    who: Principal,
) -> list[Finding]:
    """AWS answers 404 for a missing key only to a caller that may list the bucket
    (evaluated without ``s3:prefix``: the read names no prefix); otherwise 403."""
    bucket_arn = f"arn:{bucket.partition}:s3:::{call.params['Bucket']}"
    context = {"aws:SecureTransport": str(bucket.secure_transport).lower()}
    request = AuthRequest("s3:ListBucket", bucket_arn, context)
    decision = evaluate(request, identity, bucket_policies, who)
    if decision.allowed:
        return []
    note = "the key is missing: AWS answers 403 AccessDenied, not 404"
    return [Finding(call, request, decision, note)]


# --- recording ----------------------------------------------------------------------------


class CallRecorder:
    """Records every call of the boto3 clients it is attached to (thread-safe: managed
    transfers call from worker threads)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def attach(self, client: Any, principal: str) -> Any:
        """Record ``client``'s calls as made by ``principal``; returns ``client``."""
        service = client.meta.service_model.service_id.hyphenize()

        def before(
            params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
        ) -> None:
            kept = {k: copy.deepcopy(params[k]) for k in _RECORDED if k in params}
            context["recorded"] = {"operation": model.name, "params": kept}

        def after(http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
            recorded = context.get("recorded")
            if recorded is None:
                return
            call = Call(
                principal, recorded["operation"], recorded["params"], http_response.status_code
            )
            with self._lock:
                self.calls.append(call)

        client.meta.events.register(f"provide-client-params.{service}", before)
        client.meta.events.register(f"after-call.{service}", after)
        return client

    def of(self, principal: str) -> list[Call]:
        """The calls ``principal`` made."""
        with self._lock:
            return [c for c in self.calls if c.principal == principal]
