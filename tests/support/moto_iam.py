"""moto's server in a subprocess with IAM enforcement, and IAM users holding given policies.

moto reads ``INITIAL_NO_AUTH_ACTION_COUNT`` when it is imported (the first N requests go
unauthenticated, every later one is checked against the caller's policies), so the server
runs in a process of its own, started with the variable at infinity: the test creates the
bucket, its fixtures and the users unauthenticated, then :meth:`IamMoto.enforce` sets it
to 0 through moto's ``/moto-api/reset-auth`` (what moto's ``set_initial_no_auth_action_count``
does in server mode) and checks that an unprivileged request is now refused.

moto enforces actions and resources (an ungranted call gets 403 AccessDenied); it ignores
conditions other than ``StringEquals`` on the few keys it knows, and answers 404 for a
missing key whatever the caller may list: :mod:`tests.support.iam_policy` checks those.

moto 5.2.6 (measured here) authorises an S3 request as ``s3:`` + the API operation
(``s3:HeadObject``, ``s3:ListObjectsV2``, ``s3:CreateMultipartUpload``: no such IAM
actions, so any real policy is refused them), although its S3 responses put the IAM action
(``GetObject``, ``ListBucket``, ``PutObject``) in the request data. The server below
authorises by that IAM action instead, as AWS does (5.2.5 did).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any

import boto3
from botocore.config import Config

_SERVER = """
import sys
from moto.iam import access_control
from moto.server import ThreadedMotoServer

_checked_as = access_control.S3IAMRequest.__init__


def _as_iam_action(self, *args, **kwargs):
    data = kwargs.get("data") or {}
    if data.get("Action"):  # the IAM action from moto's S3 ACTION_MAP
        kwargs["action"] = data["Action"]
    _checked_as(self, *args, **kwargs)


access_control.S3IAMRequest.__init__ = _as_iam_action

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the test closes stdin (or ends)
server.stop()
"""
_SETUP_KEY = ("testing", "testing")
_RETRIES = Config(retries={"total_max_attempts": 2, "mode": "standard"})


class EnforcementError(RuntimeError):
    """moto did not start refusing ungranted requests."""


@dataclass(frozen=True)
class Credentials:
    """An IAM user's access key."""

    user: str
    arn: str
    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        """The environment variables boto3 reads these credentials from."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


class IamMoto:
    """A moto server on 127.0.0.1 (a free port) that enforces IAM once :meth:`enforce` ran.

    Examples
    --------
    >>> with IamMoto("us-east-1") as moto:  # doctest: +SKIP
    ...     moto.client("s3").create_bucket(Bucket="b")
    ...     reader = moto.create_user("reader", [policy])
    ...     moto.enforce()
    ...     moto.client("s3", reader).get_object(Bucket="b", Key="k")
    """

    def __init__(self, region: str) -> None:
        self.region = region
        self.endpoint = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> IamMoto:
        env = {k: v for k, v in os.environ.items() if k != "INITIAL_NO_AUTH_ACTION_COUNT"}
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # the request log
            text=True,
            env=env,
        )
        self._process = process
        port = _read_line(process.stdout)
        if not port.strip().isdigit():
            self.__exit__(None, None, None)
            raise RuntimeError(f"moto server did not start (printed {port!r})")
        self.endpoint = f"http://127.0.0.1:{port.strip()}"
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        """A boto3 client on the server, as ``credentials`` (default: the setup key, which
        works only before :meth:`enforce`)."""
        key, secret = (
            (credentials.access_key_id, credentials.secret_access_key)
            if credentials
            else _SETUP_KEY
        )
        return boto3.session.Session(
            aws_access_key_id=key, aws_secret_access_key=secret, region_name=self.region
        ).client(service, endpoint_url=self.endpoint, config=_RETRIES)

    def create_user(self, name: str, policies: Sequence[Mapping[str, Any]]) -> Credentials:
        """An IAM user holding exactly ``policies`` (inline), and an access key of it."""
        iam = self.client("iam")
        arn = iam.create_user(UserName=name)["User"]["Arn"]
        for number, document in enumerate(policies, 1):
            iam.put_user_policy(
                UserName=name, PolicyName=f"{name}-{number}", PolicyDocument=json.dumps(document)
            )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(name, arn, key["AccessKeyId"], key["SecretAccessKey"])

    def enforce(self, canary: Credentials) -> None:
        """Check every later request against the caller's policies, and prove it: the
        ``canary`` (a user without policies) must be refused a bucket listing."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0",
            headers={"Content-Type": "text/plain"},  # not a form: the body is the count
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            json.load(response)
        s3 = self.client("s3", canary)
        try:
            s3.list_buckets()
        except s3.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in ("AccessDenied", "403"):
                return
            raise
        raise EnforcementError("moto still answers requests it should refuse")


def _read_line(stream: IO[str] | None) -> str:
    return stream.readline() if stream is not None else ""
