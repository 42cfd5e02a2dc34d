"""The job image: an ECR repository and one image for both jobs, referenced by digest."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

KEEP_IMAGES = 10
# Build argument of images/Dockerfile naming the speech model baked into the image.
ASR_MODEL_ARG = "ASR_MODEL"


class JobImage(pulumi.ComponentResource):
    """Build ``dockerfile`` in ``context`` for ``platform`` and push it to a new repository.

    ``asr_model`` is the faster-whisper model baked into the image at build time.
    ``image_uri`` is ``REPOSITORY@sha256:DIGEST``, so task definitions change exactly when
    the image does. The repository is deleted with its images on ``pulumi destroy``: they
    are rebuilt from the source on the next deploy.
    """

    image_uri: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    repository_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        context: str,
        dockerfile: str,
        asr_model: str,
        platform: str = "linux/amd64",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("klippers:image:JobImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            name,
            image_scanning_configuration={"scan_on_push": True},
            image_tag_mutability="MUTABLE",
            encryption_configurations=[{"encryption_type": "AES256"}],
            force_delete=True,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the last {KEEP_IMAGES} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": KEEP_IMAGES,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        image = awsx.ecr.Image(
            name,
            repository_url=repository.repository_url,
            context=context,
            dockerfile=dockerfile,
            platform=platform,
            args={ASR_MODEL_ARG: asr_model},
            opts=child,
        )
        self.image_uri = image.image_uri.apply(_require_digest)
        self.repository_arn = repository.arn
        self.repository_url = repository.repository_url
        self.register_outputs({"imageUri": self.image_uri, "repositoryUrl": self.repository_url})


def _require_digest(uri: str | None) -> str:
    if not uri or "@sha256:" not in uri:
        raise ValueError(f"the pushed image is not referenced by digest: {uri!r}")
    return uri
