"""Where the tasks run: the default VPC's subnets (or configured ones) and an egress-only SG."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

HTTPS_PORT = 443


class TaskNetwork(pulumi.ComponentResource):
    """Subnets for the Fargate tasks and a security group: no inbound, outbound HTTPS only.

    The VPC's DNS resolver is reachable without a rule, and every service the jobs call
    is an HTTPS endpoint. Without ``subnet_ids`` the default VPC's default subnets are
    used; with them, ``vpc_id`` is required.
    """

    subnet_ids: pulumi.Output[list[str]]
    security_group_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        vpc_id: str | None = None,
        subnet_ids: Sequence[str] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("klippers:network:TaskNetwork", name, None, opts)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        if subnet_ids:
            if not vpc_id:
                raise ValueError("vpcId: required when subnetIds are configured")
            vpc: pulumi.Input[str] = vpc_id
            self.subnet_ids = pulumi.Output.from_input(list(subnet_ids))
        else:
            default_vpc = aws.ec2.get_vpc_output(default=True, opts=invoke)
            vpc = default_vpc.id
            self.subnet_ids = aws.ec2.get_subnets_output(
                filters=default_vpc.id.apply(
                    lambda vpc_id: [
                        aws.ec2.GetSubnetsFilterArgs(name="vpc-id", values=[vpc_id]),
                        aws.ec2.GetSubnetsFilterArgs(name="default-for-az", values=["true"]),
                    ]
                ),
                opts=invoke,
            ).ids
        group = aws.ec2.SecurityGroup(
            name,
            vpc_id=vpc,
            description="Klippers jobs: outbound only",
            ingress=[],
            egress=[
                {
                    "description": "AWS APIs (S3, ECR, CloudWatch Logs) over HTTPS",
                    "protocol": "tcp",
                    "from_port": HTTPS_PORT,
                    "to_port": HTTPS_PORT,
                    "cidr_blocks": ["0.0.0.0/0"],
                    "ipv6_cidr_blocks": ["::/0"],
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.security_group_id = group.id
        self.register_outputs(
            {"subnetIds": self.subnet_ids, "securityGroupId": self.security_group_id}
        )
