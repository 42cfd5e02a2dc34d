"""The warehouse bucket: private, encrypted, TLS only, incomplete uploads cleaned up."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from klippers_infra.policies import tls_only_bucket_policy


class Warehouse(pulumi.ComponentResource):
    """The S3 bucket holding ``klippers_warehouse/``, created here or an existing one.

    Parameters
    ----------
    name
        Logical name.
    existing_bucket_name
        Use this bucket instead of creating one (its settings are left alone).
    force_destroy
        Let ``pulumi destroy`` delete the bucket with every object in it. Without it the
        bucket and its objects are kept (removed from the stack, not from AWS).
    abort_incomplete_upload_days
        Days after which parts of unfinished multipart uploads (the only temporary
        objects the jobs leave behind) are deleted.
    """

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        existing_bucket_name: str | None = None,
        force_destroy: bool = False,
        kms_key_arn: str | None = None,
        abort_incomplete_upload_days: int = 1,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("klippers:storage:Warehouse", name, None, opts)
        if existing_bucket_name:
            found = aws.s3.get_bucket_output(
                bucket=existing_bucket_name, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            self.bucket_name = found.bucket
            self.bucket_arn = found.arn
        else:
            bucket = aws.s3.Bucket(
                name,
                bucket_prefix="klippers-warehouse-",
                force_destroy=force_destroy,
                opts=self._options(force_destroy),
            )
            self.bucket_name = bucket.bucket
            self.bucket_arn = bucket.arn
            self._secure(name, bucket, abort_incomplete_upload_days, force_destroy, kms_key_arn)
        self.register_outputs({"bucketName": self.bucket_name, "bucketArn": self.bucket_arn})

    def _options(self, force_destroy: bool, **more: Any) -> pulumi.ResourceOptions:
        """Kept on ``pulumi destroy`` (with the bucket's settings) unless ``force_destroy``."""
        return pulumi.ResourceOptions(parent=self, retain_on_delete=not force_destroy, **more)

    def _secure(
        self,
        name: str,
        bucket: aws.s3.Bucket,
        abort_days: int,
        force_destroy: bool,
        kms_key_arn: str | None,
    ) -> None:
        child = self._options(force_destroy)
        public = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": (
                        {"sse_algorithm": "aws:kms", "kms_master_key_id": kms_key_arn}
                        if kms_key_arn
                        else {"sse_algorithm": "AES256"}
                    ),
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(tls_only_bucket_policy(arn))),
            opts=self._options(force_destroy, depends_on=[public]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "abort-incomplete-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": abort_days},
                }
            ],
            opts=child,
        )
