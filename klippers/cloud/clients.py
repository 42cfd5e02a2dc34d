"""boto3 clients, the cloud's error types, and how flags pick the bucket and the video.

The only module of :mod:`klippers.cloud` that imports boto3 (lazily, so ``klip`` starts
without it). Every AWS call of the package runs inside :func:`aws_errors`, which turns
botocore's errors into :class:`CloudError` naming the action.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from klippers.contract import ENV_BUCKET, ENV_USER_ID, ENV_VIDEO_ID, ContractError, VideoRef
from klippers.storage import S3Storage, StorageError


class CloudError(Exception):
    """An AWS call failed or the cloud is not in the state a command needs.

    ``code`` is the AWS error code when an AWS call failed.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class CloudInputError(CloudError, ValueError):
    """The user's input is invalid: IDs, files, flags, or a missing uploaded input."""


@dataclass(frozen=True)
class Clients:
    """boto3 clients for Step Functions, CloudWatch Logs and S3.

    boto3 finds credentials, region and endpoints as usual (``AWS_PROFILE``,
    ``AWS_REGION``, ``AWS_ENDPOINT_URL``...).
    """

    sfn: Any
    logs: Any
    s3: Any

    @classmethod
    def connect(cls, region: str | None = None, max_attempts: int = 8) -> Clients:
        """Create the clients with botocore's ``standard`` retries."""
        try:
            import boto3  # type: ignore[import-untyped]
            from botocore.config import Config  # type: ignore[import-untyped]
        except ImportError as exc:
            raise CloudError("klip cloud needs boto3: pip install 'klippers[aws]'") from exc
        session = boto3.session.Session(region_name=region)
        if session.region_name is None:
            raise CloudInputError("no AWS region: set AWS_REGION (or a profile's region)")
        config = Config(retries={"total_max_attempts": max_attempts, "mode": "standard"})
        return cls(
            sfn=session.client("stepfunctions", config=config),
            logs=session.client("logs", config=config),
            s3=session.client("s3", config=config),
        )

    def warehouse(self, bucket: str) -> S3Storage:
        """The warehouse bucket as a :class:`~klippers.storage.S3Storage`."""
        try:
            return S3Storage(bucket, client=self.s3)
        except StorageError as exc:
            raise CloudInputError(str(exc)) from exc


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn botocore errors into :class:`CloudError` naming ``action``."""
    import botocore.exceptions  # type: ignore[import-untyped]

    try:
        yield
    except botocore.exceptions.NoCredentialsError as exc:
        raise CloudError(
            f"{action}: no AWS credentials found (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID)"
        ) from exc
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        raise CloudError(f"{action}: {code}: {error.get('Message', exc)}", code) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise CloudError(f"{action}: {exc}") from exc


def bucket_name(flag: str | None, environ: Mapping[str, str]) -> str:
    """The warehouse bucket: ``flag``, else ``VIDEO_WAREHOUSE_S3_BUCKET_NAME``."""
    bucket = (flag or environ.get(ENV_BUCKET, "")).strip()
    if not bucket:
        raise CloudInputError(f"no bucket: pass --bucket or set {ENV_BUCKET}")
    return bucket


def video_ref(user: str | None, video: str | None, environ: Mapping[str, str]) -> VideoRef:
    """The video from flags, else the seed's ``USER_ID`` / ``VIDEO_ID`` variables."""
    values = []
    for value, env_name, option in (
        (user, ENV_USER_ID, "--user"),
        (video, ENV_VIDEO_ID, "--video"),
    ):
        chosen = value if value is not None else environ.get(env_name)
        if chosen is None:
            raise CloudInputError(f"no {option[2:]} ID: pass {option} or set {env_name}")
        values.append(chosen)
    try:
        return VideoRef(*values)
    except ContractError as exc:
        raise CloudInputError(str(exc)) from exc
