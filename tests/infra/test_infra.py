"""The Pulumi program under mocks: every resource, its properties, least-privilege IAM, wiring.

The program (``infra/__main__.py``) runs inside ``@pulumi.runtime.test`` with
``preview=False``; the mocks record every resource's inputs and answer with realistic
ARNs, so the checks below read exactly what would be sent to AWS.
"""

from __future__ import annotations

import json
import runpy
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
import yaml

with warnings.catch_warnings():
    # pulumi_aws warns about its own deprecated classes when a module first loads (lazily).
    warnings.simplefilter("ignore", DeprecationWarning)
    LOADED = (aws.s3.Bucket, aws.ecr.Repository, aws.ecs.Cluster, aws.iam.Role)
    LOADED += (aws.cloudwatch.LogGroup, aws.ec2.SecurityGroup, aws.sfn.StateMachine)

from klippers import contract, statemachine
from klippers.aws import (
    CHILD_CONTAINER,
    PARENT_CONTAINER,
    RECOMMENDED_CHILD_SIZE,
    RECOMMENDED_PARENT_SIZE,
    SEED_TASK_SIZE,
    StackNames,
    TaskSize,
)
from klippers.contract import DEFAULT_ASR_MODEL

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
sys.path.insert(0, str(INFRA))

from klippers_infra import policies, tasks  # noqa: E402

ACCOUNT = "123456789012"
REGION = "eu-west-1"
DIGEST = "sha256:" + "d" * 64
DEFAULT_SUBNETS = ["subnet-0aaa", "subnet-0bbb"]
STACK = "test"
NAMES = StackNames.for_stack(STACK)


@dataclass
class Recorder(pulumi.runtime.Mocks):
    """Mocks that record every resource and invoke and answer with realistic outputs."""

    resources: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        rid, outputs = self._outputs(args.typ, args.name, inputs)
        self.resources.append((args.typ, args.name, inputs, outputs))
        return rid, outputs

    @staticmethod
    def _outputs(typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out = dict(inputs)
        rid = f"{name}-id"
        if typ == "aws:s3/bucket:Bucket":
            rid = f"{inputs['bucketPrefix']}20250101"
            out.update(bucket=rid, arn=f"arn:aws:s3:::{rid}")
        elif typ == "aws:ecr/repository:Repository":
            url = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}-0f0f"
            out.update(
                name=f"{name}-0f0f",
                repositoryUrl=url,
                arn=f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}-0f0f",
            )
        elif typ == "awsx:ecr:Image":
            out["imageUri"] = f"{inputs['repositoryUrl']}@{DIGEST}"
        elif typ == "aws:ecs/cluster:Cluster":
            cluster = inputs.get("name", f"{name}-c1")
            out.update(name=cluster, arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}")
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            out["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{inputs['name']}"
        elif typ == "aws:iam/role:Role":
            role = inputs.get("name", f"{name}-r1")
            out.update(name=role, arn=f"arn:aws:iam::{ACCOUNT}:role/{role}")
            rid = role
        elif typ == "aws:ecs/taskDefinition:TaskDefinition":
            family = inputs["family"]
            out["arn"] = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:4"
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            rid = "sg-0123abcd"
        elif typ == "aws:sfn/stateMachine:StateMachine":
            out["arn"] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{inputs['name']}"
        elif typ == "aws:sns/topic:Topic":
            out["arn"] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{inputs['name']}"
        elif typ == "aws:cloudwatch/eventRule:EventRule":
            out["arn"] = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{inputs['name']}"
        return rid, out

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:ec2/getVpc:getVpc":
            return {"id": "vpc-default"}
        if args.token == "aws:ec2/getSubnets:getSubnets":
            return {"ids": DEFAULT_SUBNETS}
        if args.token == "aws:s3/getBucket:getBucket":
            name = args.args["bucket"]
            return {"id": name, "bucket": name, "arn": f"arn:aws:s3:::{name}"}
        raise AssertionError(f"unexpected invoke {args.token}")

    # --- lookups -----------------------------------------------------------------------------

    def of_type(self, typ: str) -> list[dict[str, Any]]:
        return [inputs for t, _, inputs, _ in self.resources if t == typ]

    def one(self, typ: str, name: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        found = [(i, o) for t, n, i, o in self.resources if t == typ and name in (None, n)]
        assert len(found) == 1, f"{typ} {name}: {len(found)} found"
        return found[0]

    def policy(self, name: str) -> dict[str, Any]:
        inputs, _ = self.one("aws:iam/rolePolicy:RolePolicy", name)
        return json.loads(inputs["policy"])

    def role_arn(self, name: str) -> str:
        return self.one("aws:iam/role:Role", name)[1]["arn"]


@dataclass
class Run:
    mocks: Recorder
    exports: dict[str, Any]


def run_program(config: dict[str, str], stack: str = STACK) -> Run:
    """Run ``infra/__main__.py`` of ``stack`` under fresh mocks with ``config``; wait for
    every resource."""
    mocks = Recorder()
    pulumi.runtime.set_mocks(mocks, project="klippers", stack=stack, preview=False)
    pulumi.runtime.set_all_config({f"klippers:{k}": v for k, v in config.items()})
    exports: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pulumi, "export", lambda name, value: exports.__setitem__(name, value))
            runpy.run_path(str(INFRA / "__main__.py"), run_name="__main__")
        return pulumi.Output.from_input(exports).apply(exports.update)

    program()
    return Run(mocks, exports)


@pytest.fixture(scope="module")
def default() -> Run:
    return run_program({})


@pytest.fixture(scope="module")
def custom() -> Run:
    return run_program(
        {
            "existingBucketName": "acme-media",
            "vpcId": "vpc-private",
            "subnetIds": json.dumps(["subnet-p1", "subnet-p2", "subnet-p3"]),
            "assignPublicIp": "false",
            "parentCpu": "8192",
            "parentMemory": "32768",
            "childCpu": "4096",
            "childMemory": "16384",
            "childStorageGib": "150",
            "maxConcurrency": "25",
            "childTimeoutSeconds": "900",
            "logRetentionDays": "7",
            "asrModel": "base.en",
        }
    )


# --- least privilege ----------------------------------------------------------------------


def assert_least_privilege(document: dict[str, Any]) -> None:
    """No wildcard in any allowed action; ``Resource: "*"`` only where AWS requires it."""
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow", statement
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        assert actions, statement
        assert not [a for a in actions if "*" in a], statement
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if "*" in resources:
            assert resources == ["*"], statement
            assert set(actions) <= policies.UNSCOPED_ACTIONS, statement
        else:
            assert all(r.startswith("arn:aws:") for r in resources), statement


def _statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


def test_least_privilege_check_rejects_wildcards() -> None:
    bucket = "arn:aws:s3:::b"
    assert_least_privilege(policies.task_role_policy(bucket, "parent"))
    too_broad = [
        {"Sid": "A", "Effect": "Allow", "Action": ["s3:*"], "Resource": [bucket]},
        {"Sid": "B", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]},
        {"Sid": "C", "Effect": "Allow", "Action": "*", "Resource": bucket},
    ]
    for statement in too_broad:
        with pytest.raises(AssertionError):
            assert_least_privilege({"Statement": [statement]})


# --- resources ----------------------------------------------------------------------------


def test_the_program_creates_exactly_these_resources(default: Run) -> None:
    counts = Counter(t for t, *_ in default.mocks.resources)
    assert counts == {
        "klippers:storage:Warehouse": 1,
        "aws:s3/bucket:Bucket": 1,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 1,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
        "aws:s3/bucketPolicy:BucketPolicy": 1,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 1,
        "klippers:image:JobImage": 1,
        "aws:ecr/repository:Repository": 1,
        "aws:ecr/lifecyclePolicy:LifecyclePolicy": 1,
        "awsx:ecr:Image": 1,
        "klippers:network:TaskNetwork": 1,
        "aws:ec2/securityGroup:SecurityGroup": 1,
        "klippers:jobs:Jobs": 1,
        "aws:ecs/cluster:Cluster": 1,
        "aws:cloudwatch/logGroup:LogGroup": 2,
        "aws:iam/role:Role": 4,
        "aws:iam/rolePolicy:RolePolicy": 4,
        "aws:ecs/taskDefinition:TaskDefinition": 2,
        "klippers:pipeline:Pipeline": 1,
        "aws:sfn/stateMachine:StateMachine": 1,
    }


def test_bucket_is_private_encrypted_tls_only_with_upload_cleanup(default: Run) -> None:
    m = default.mocks
    bucket_in, bucket = m.one("aws:s3/bucket:Bucket")
    assert bucket_in == {"bucketPrefix": "klippers-warehouse-", "forceDestroy": False}
    block, _ = m.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block == {
        "bucket": bucket["bucket"],
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    ownership, _ = m.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    (sse,) = m.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert sse["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}, "bucketKeyEnabled": True}
    ]
    policy_in, _ = m.one("aws:s3/bucketPolicy:BucketPolicy")
    (deny,) = json.loads(policy_in["policy"])["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [bucket["arn"], bucket["arn"] + "/*"]
    lifecycle, _ = m.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    (rule,) = lifecycle["rules"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == {"prefix": ""}
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}


def test_image_is_built_from_images_dockerfile_and_used_by_digest(default: Run) -> None:
    m = default.mocks
    repo_in, repo = m.one("aws:ecr/repository:Repository")
    assert repo_in["imageScanningConfiguration"] == {"scanOnPush": True}
    lifecycle, _ = m.one("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert lifecycle["repository"] == repo["name"]
    assert json.loads(lifecycle["policy"])["rules"][0]["action"] == {"type": "expire"}
    image, built = m.one("awsx:ecr:Image")
    assert image["repositoryUrl"] == repo["repositoryUrl"]
    assert (INFRA / image["context"]).resolve() == REPO
    assert (INFRA / image["dockerfile"]).resolve() == REPO / "images" / "Dockerfile"
    assert image["platform"] == "linux/amd64"
    assert image["args"] == {"ASR_MODEL": DEFAULT_ASR_MODEL}
    assert default.exports["imageUri"] == built["imageUri"] == f"{repo['repositoryUrl']}@{DIGEST}"


def test_network_uses_default_subnets_and_an_egress_only_group(default: Run) -> None:
    m = default.mocks
    assert m.calls[0] == ("aws:ec2/getVpc:getVpc", {"default": True})
    assert m.calls[1] == (
        "aws:ec2/getSubnets:getSubnets",
        {
            "filters": [
                {"name": "vpc-id", "values": ["vpc-default"]},
                {"name": "default-for-az", "values": ["true"]},
            ]
        },
    )
    group, _ = m.one("aws:ec2/securityGroup:SecurityGroup")
    assert group["vpcId"] == "vpc-default"
    assert group["ingress"] == []
    (egress,) = group["egress"]
    assert (egress["protocol"], egress["fromPort"], egress["toPort"]) == ("tcp", 443, 443)


def _containers(m: Recorder, family: str) -> tuple[dict[str, Any], dict[str, Any]]:
    (task,) = [
        i for i in m.of_type("aws:ecs/taskDefinition:TaskDefinition") if i["family"] == family
    ]
    (container,) = json.loads(task["containerDefinitions"])
    return task, container


@pytest.mark.parametrize(
    ("family", "module", "container_name"),
    [
        (NAMES.parent_family, contract.PARENT_JOB_MODULE, PARENT_CONTAINER),
        (NAMES.child_family, contract.CHILD_JOB_MODULE, CHILD_CONTAINER),
    ],
)
def test_task_definitions_run_the_jobs_on_fargate(
    default: Run, family: str, module: str, container_name: str
) -> None:
    m = default.mocks
    task, container = _containers(m, family)
    job = family.removeprefix(f"{NAMES.prefix}-")
    size, disk = {
        "parent": (RECOMMENDED_PARENT_SIZE, 100),
        "child": (RECOMMENDED_CHILD_SIZE, 21),
    }[job]
    assert task["cpu"] == str(size.cpu_units)
    assert task["memory"] == str(size.memory_mib)
    assert task["ephemeralStorage"] == {"sizeInGib": disk}
    assert task["networkMode"] == "awsvpc"
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert task["runtimePlatform"] == {
        "operatingSystemFamily": "LINUX",
        "cpuArchitecture": "X86_64",
    }
    assert task["executionRoleArn"] == m.role_arn("klippers-execution")
    assert task["taskRoleArn"] == m.role_arn(f"klippers-{job}-task")
    assert container["name"] == container_name
    assert container["image"] == default.exports["imageUri"]
    assert container["command"] == ["python", "-m", module]
    env = {e["name"]: e["value"] for e in container["environment"]}
    limit = {"parent": {contract.ENV_PARENT_TIMEOUT: "7200"}, "child": {}}[job]
    assert env == {
        contract.ENV_BUCKET: default.exports["bucketName"],
        "KLIPPERS_LOG_FORMAT": "json",
        **limit,
    }
    logs = container["logConfiguration"]
    assert logs["logDriver"] == "awslogs"
    assert logs["options"]["awslogs-group"] == "/ecs/klippers-test-jobs"
    assert logs["options"]["awslogs-region"] == REGION
    assert logs["options"]["awslogs-stream-prefix"] == job


def test_log_groups_have_retention(default: Run) -> None:
    groups = {g["name"]: g for g in default.mocks.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert set(groups) == {
        "/ecs/klippers-test-jobs",
        "/aws/vendedlogs/states/klippers-test-video-processing",
    }
    assert all(g["retentionInDays"] == 30 for g in groups.values())


# --- IAM ----------------------------------------------------------------------------------


def test_every_role_policy_is_least_privilege(default: Run) -> None:
    for inputs in default.mocks.of_type("aws:iam/rolePolicy:RolePolicy"):
        assert_least_privilege(json.loads(inputs["policy"]))


def test_roles_trust_only_their_service(default: Run) -> None:
    trusted = {}
    for inputs in default.mocks.of_type("aws:iam/role:Role"):
        (statement,) = json.loads(inputs["assumeRolePolicy"])["Statement"]
        assert statement["Action"] == "sts:AssumeRole"
        trusted[inputs.get("name", "")] = statement["Principal"]["Service"]
    assert trusted.pop("klippers-test-step-functions-role") == "states.amazonaws.com"
    assert set(trusted.values()) == {"ecs-tasks.amazonaws.com"}


def test_task_roles_reach_only_the_warehouse_prefix(default: Run) -> None:
    bucket_arn = f"arn:aws:s3:::{default.exports['bucketName']}"
    for job in ("parent", "child"):
        statements = _statements(default.mocks.policy(f"klippers-{job}-task"))
        assert statements["ReadWarehouse"]["Resource"] == [f"{bucket_arn}/klippers_warehouse/*"]
        listing = statements["ListWarehouse"]
        assert listing["Resource"] == [bucket_arn]
        assert listing["Condition"] == {"StringLike": {"s3:prefix": ["klippers_warehouse/*"]}}
        assert "s3:DeleteObject" not in statements["WriteWarehouse"]["Action"]
    parent = _statements(default.mocks.policy("klippers-parent-task"))
    child = _statements(default.mocks.policy("klippers-child-task"))
    assert parent["WriteWarehouse"]["Resource"] == [f"{bucket_arn}/klippers_warehouse/*"]
    assert child["WriteWarehouse"]["Resource"] == [
        f"{bucket_arn}/klippers_warehouse/*/*/videos-cropped-stacked/*"
    ]


def test_execution_role_pulls_only_this_repository_and_writes_only_job_logs(
    default: Run,
) -> None:
    statements = _statements(default.mocks.policy("klippers-execution"))
    _, repo = default.mocks.one("aws:ecr/repository:Repository")
    assert statements["PullImage"]["Resource"] == [repo["arn"]]
    assert statements["WriteLogs"]["Resource"] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/klippers-test-jobs:log-stream:*"
    ]


def test_state_machine_role_is_scoped_to_the_two_jobs(default: Run) -> None:
    m = default.mocks
    statements = _statements(m.policy("klippers-video-processing-role"))
    cluster_arn = default.exports["clusterArn"]
    assert statements["RunJobs"]["Action"] == ["ecs:RunTask"]
    assert statements["RunJobs"]["Resource"] == [
        default.exports["parentTaskDefinitionArn"],
        default.exports["childTaskDefinitionArn"],
    ]
    assert statements["RunJobs"]["Condition"] == {"ArnEquals": {"ecs:cluster": cluster_arn}}
    assert statements["FollowJobs"]["Resource"] == [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{default.exports['clusterName']}/*"
    ]
    assert statements["PassJobRoles"]["Resource"] == [
        m.role_arn("klippers-parent-task"),
        m.role_arn("klippers-child-task"),
        m.role_arn("klippers-execution"),
    ]
    assert statements["PassJobRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert statements["SyncRule"]["Action"] == [
        "events:DescribeRule",
        "events:PutRule",
        "events:PutTargets",
    ]
    assert statements["SyncRule"]["Resource"] == [
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/StepFunctionsGetEventsForECSTaskRule"
    ]
    bucket = default.exports["bucketName"]
    assert statements["ReadShortsConfig"]["Action"] == ["s3:GetObject"]
    assert statements["ReadShortsConfig"]["Resource"] == [
        f"arn:aws:s3:::{bucket}/klippers_warehouse/*/*/shorts_config.json"
    ]
    assert "logs:CreateLogDelivery" in statements["DeliverLogs"]["Action"]
    assert "xray:PutTraceSegments" in statements["Tracing"]["Action"]


# --- the state machine --------------------------------------------------------------------


def test_state_machine_logs_all_and_traces(default: Run) -> None:
    m = default.mocks
    machine, out = m.one("aws:sfn/stateMachine:StateMachine")
    assert machine["name"] == "klippers-test-video-processing"
    assert machine["type"] == "STANDARD"
    assert machine["roleArn"] == m.role_arn("klippers-video-processing-role")
    assert machine["loggingConfiguration"] == {
        "level": "ALL",
        "includeExecutionData": True,
        "logDestination": (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
            "/aws/vendedlogs/states/klippers-test-video-processing:*"
        ),
    }
    assert machine["tracingConfiguration"] == {"enabled": True}
    assert default.exports["stateMachineArn"] == out["arn"]


def test_state_machine_receives_the_definition_with_the_real_arns(default: Run) -> None:
    machine, _ = default.mocks.one("aws:sfn/stateMachine:StateMachine")
    exports = default.exports
    expected = statemachine.build_definition(
        cluster_arn=exports["clusterArn"],
        parent_task_definition_arn=exports["parentTaskDefinitionArn"],
        child_task_definition_arn=exports["childTaskDefinitionArn"],
        subnets=DEFAULT_SUBNETS,
        security_groups=["sg-0123abcd"],
        bucket=exports["bucketName"],
    )
    assert json.loads(machine["definition"]) == expected
    assert exports["clusterArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/klippers-test"
    assert exports["parentTaskDefinitionArn"].endswith("task-definition/klippers-test-parent:4")


def test_stack_outputs(default: Run) -> None:
    assert default.exports == {
        "stateMachineArn": (
            f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:klippers-test-video-processing"
        ),
        "stateMachineName": "klippers-test-video-processing",
        "stateMachineLogGroup": "/aws/vendedlogs/states/klippers-test-video-processing",
        "bucketName": "klippers-warehouse-20250101",
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/klippers-test",
        "clusterName": "klippers-test",
        "jobsLogGroup": "/ecs/klippers-test-jobs",
        "parentTaskDefinitionArn": (
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/klippers-test-parent:4"
        ),
        "childTaskDefinitionArn": (
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/klippers-test-child:4"
        ),
        "imageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/klippers-jobs-0f0f@{DIGEST}",
    }


# --- configuration ------------------------------------------------------------------------


def test_existing_bucket_is_used_and_left_alone(custom: Run) -> None:
    m = custom.mocks
    assert not [t for t, *_ in m.resources if t.startswith("aws:s3/")]
    assert ("aws:s3/getBucket:getBucket", {"bucket": "acme-media"}) in m.calls
    assert custom.exports["bucketName"] == "acme-media"
    statements = _statements(m.policy("klippers-parent-task"))
    assert statements["ReadWarehouse"]["Resource"] == [
        "arn:aws:s3:::acme-media/klippers_warehouse/*"
    ]


def test_configured_network_sizes_and_limits_are_applied(custom: Run) -> None:
    m = custom.mocks
    assert not [c for c in m.calls if c[0].startswith("aws:ec2/")]
    group, _ = m.one("aws:ec2/securityGroup:SecurityGroup")
    assert group["vpcId"] == "vpc-private"
    parent, _ = _containers(m, NAMES.parent_family)
    child, _ = _containers(m, NAMES.child_family)
    assert (parent["cpu"], parent["memory"]) == ("8192", "32768")
    assert (child["cpu"], child["memory"]) == ("4096", "16384")
    assert child["ephemeralStorage"] == {"sizeInGib": 150}
    assert {g["retentionInDays"] for g in m.of_type("aws:cloudwatch/logGroup:LogGroup")} == {7}
    assert m.one("awsx:ecr:Image")[0]["args"] == {"ASR_MODEL": "base.en"}
    machine, _ = m.one("aws:sfn/stateMachine:StateMachine")
    definition = json.loads(machine["definition"])
    render = definition["States"][statemachine.RENDER_SHORTS]
    assert render["MaxConcurrency"] == 25
    child_state = statemachine.all_states(definition)[statemachine.RENDER_SHORT]
    assert child_state["TimeoutSeconds"] == 900
    network = child_state["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network == {
        "Subnets": ["subnet-p1", "subnet-p2", "subnet-p3"],
        "SecurityGroups": ["sg-0123abcd"],
        "AssignPublicIp": "DISABLED",
    }
    assert definition["States"][statemachine.READ_CONFIG]["Parameters"]["Bucket"] == "acme-media"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"parentCpu": "16384", "parentMemory": "1024"}, "memory: 1024 MiB"),
        ({"childCpu": "3000"}, "cpu: Fargate allows"),
        ({"childStorageGib": "500"}, "ephemeral_gib"),
        ({"sizes": "huge"}, "sizes: must be one of recommended, seed"),
        ({"notify": "not-an-address"}, "notify: must be an e-mail address"),
        ({"subnetIds": '["subnet-x"]'}, "vpcId: required"),
        ({"maxConcurrency": "5000"}, "max_concurrency"),
    ],
)
def test_bad_config_stops_the_program_with_a_clear_error(
    config: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run_program(config)


def test_a_wrong_expectation_inside_apply_fails() -> None:
    """With preview=False and complete mock outputs, checks inside apply really run."""
    mocks = Recorder()
    pulumi.runtime.set_mocks(mocks, project="klippers", stack="test", preview=False)
    pulumi.runtime.set_all_config({})

    @pulumi.runtime.test
    def wrong() -> pulumi.Output[None]:
        namespace = runpy.run_path(str(INFRA / "__main__.py"), run_name="__main__")
        arn = namespace["pipeline"].state_machine_arn

        def check(value: str) -> None:
            assert value == "arn:aws:states:::stateMachine:not-this-one"

        return arn.apply(check)

    with pytest.raises(AssertionError, match="not-this-one"):
        wrong()


def test_pulumi_project_file() -> None:
    project = yaml.safe_load((INFRA / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert project["name"] == "klippers"
    assert project["runtime"]["name"] == "python"


# --- pure pieces ---------------------------------------------------------------------------


def test_fargate_sizes() -> None:
    assert tasks.task_size(cpu=16384, memory=122880) == TaskSize(16, 120)
    assert tasks.task_size(cpu=256, memory=512) == TaskSize(0.25, 0.5)
    for cpu, memory in ((256, 1536), (8192, 20000), (16384, 131072), (512, 512)):
        with pytest.raises(ValueError, match="memory"):
            tasks.task_size(cpu=cpu, memory=memory)
    with pytest.raises(ValueError, match="cpu"):
        tasks.task_size(cpu=3000, memory=4096)
    assert tasks.check_ephemeral_gib(21) == 21
    assert tasks.check_ephemeral_gib(200) == 200
    for gib in (20, 201):
        with pytest.raises(ValueError, match="ephemeral_gib"):
            tasks.check_ephemeral_gib(gib)


def test_container_definition_refuses_a_tag_reference() -> None:
    with pytest.raises(ValueError, match="digest"):
        tasks.container_definitions(
            container="c",
            image="repo:latest",
            command=["python"],
            bucket="b",
            log_group="g",
            region=REGION,
            stream_prefix="p",
        )


def test_arn_parsing() -> None:
    arn = policies.Arn.parse("arn:aws-cn:ecs:cn-north-1:111:cluster/x:y")
    assert (arn.partition, arn.region, arn.account, arn.resource) == (
        "aws-cn",
        "cn-north-1",
        "111",
        "cluster/x:y",
    )
    with pytest.raises(ValueError, match="not an ARN"):
        policies.Arn.parse("cluster/x")


# --- stacks, sizes, destroy and notifications (issue 14) -----------------------------------


def _named(run: Run) -> set[str]:
    """Every physical name the program sets itself (others are auto-named by Pulumi)."""
    return {
        inputs[key]
        for _, _, inputs, _ in run.mocks.resources
        for key in ("name", "family")
        if isinstance(inputs.get(key), str)
    }


def test_two_stacks_share_no_resource_name() -> None:
    dev, prod = run_program({}, "dev"), run_program({}, "prod")
    assert _named(dev) & _named(prod) == set()
    assert dev.exports["stateMachineName"] == "klippers-dev-video-processing"
    assert prod.exports["stateMachineLogGroup"] == (
        "/aws/vendedlogs/states/klippers-prod-video-processing"
    )
    assert prod.exports["jobsLogGroup"] == "/ecs/klippers-prod-jobs"


def test_an_awkward_stack_name_gives_valid_bounded_names() -> None:
    run = run_program({}, "Feature_Branch.With-A-Very-Long-Name-Indeed")
    names = _named(run)
    role = next(n for n in names if n.endswith("-step-functions-role"))
    assert len(role) <= 64
    for name in names:
        assert name == name.lower() or name.startswith("/"), name
        assert all(c.isalnum() or c in "-/" for c in name), name


def test_seed_sizes_are_one_switch_and_keys_override_one_unit() -> None:
    seed = run_program({"sizes": "seed"})
    for family in (NAMES.parent_family, NAMES.child_family):
        task, _ = _containers(seed.mocks, family)
        assert (task["cpu"], task["memory"]) == (
            str(SEED_TASK_SIZE.cpu_units),
            str(SEED_TASK_SIZE.memory_mib),
        )
    mixed = run_program({"childCpu": "4096", "parentMemory": "65536"})
    task, _ = _containers(mixed.mocks, NAMES.child_family)
    assert (task["cpu"], task["memory"]) == ("4096", "8192")  # the least 4 vCPU allow
    task, _ = _containers(mixed.mocks, NAMES.parent_family)
    assert (task["cpu"], task["memory"]) == (str(RECOMMENDED_PARENT_SIZE.cpu_units), "65536")


def _retained(config: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """``retainOnDelete`` of every registered resource, by type, as the engine receives it."""
    retained: dict[str, bool] = {}
    original = pulumi.runtime.mocks.MockMonitor.RegisterResource

    def register(self: Any, request: Any) -> Any:
        retained[request.type] = retained.get(request.type, False) or request.retainOnDelete
        return original(self, request)

    monkeypatch.setattr(pulumi.runtime.mocks.MockMonitor, "RegisterResource", register)
    run_program(config)
    return retained


def test_destroy_deletes_the_image_repository_and_keeps_the_bucket_unless_told(
    default: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository, _ = default.mocks.one("aws:ecr/repository:Repository")
    assert repository["forceDelete"] is True
    kept = _retained({}, monkeypatch)
    bucket_types = [t for t in kept if t.startswith("aws:s3/")]
    assert len(bucket_types) == 6
    assert all(kept[t] for t in bucket_types)
    assert not any(kept[t] for t in kept if not t.startswith("aws:s3/"))

    forced = run_program({"forceDestroy": "true"})
    bucket, _ = forced.mocks.one("aws:s3/bucket:Bucket")
    assert bucket["forceDestroy"] is True
    assert not any(_retained({"forceDestroy": "true"}, monkeypatch).values())


def test_notifications_publish_every_ended_execution_to_a_subscribed_topic() -> None:
    run = run_program({"notify": "ops@example.com"})
    m = run.mocks
    topic, topic_out = m.one("aws:sns/topic:Topic")
    assert topic["name"] == NAMES.notifications
    assert "kmsMasterKeyId" not in topic  # EventBridge cannot use the AWS managed SNS key
    rule, rule_out = m.one("aws:cloudwatch/eventRule:EventRule")
    assert json.loads(rule["eventPattern"]) == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "status": ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"],
            "stateMachineArn": [run.exports["stateMachineArn"]],
        },
    }
    target, _ = m.one("aws:cloudwatch/eventTarget:EventTarget")
    assert (target["rule"], target["arn"]) == (rule["name"], topic_out["arn"])
    policy_in, _ = m.one("aws:sns/topicPolicy:TopicPolicy")
    assert policy_in["arn"] == topic_out["arn"]
    (statement,) = json.loads(policy_in["policy"])["Statement"]
    assert statement == {
        "Sid": "ExecutionStatusRulePublishes",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": topic_out["arn"],
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_out["arn"]}},
    }
    subscription, _ = m.one("aws:sns/topicSubscription:TopicSubscription")
    assert subscription == {
        "topic": topic_out["arn"],
        "protocol": "email",
        "endpoint": "ops@example.com",
    }
    assert run.exports["notificationTopicArn"] == topic_out["arn"]


@pytest.mark.parametrize(
    ("subscriber", "protocol"),
    [
        (f"arn:aws:sqs:{REGION}:{ACCOUNT}:klippers-events", "sqs"),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:on-klippers", "lambda"),
    ],
)
def test_notifications_subscribe_a_queue_or_function_by_arn(subscriber: str, protocol: str) -> None:
    run = run_program({"notify": subscriber})
    subscription, _ = run.mocks.one("aws:sns/topicSubscription:TopicSubscription")
    assert (subscription["protocol"], subscription["endpoint"]) == (protocol, subscriber)


# --- trust conditions and the warehouse key -------------------------------------------------


def test_roles_trust_their_service_only_for_this_account_and_source(default: Run) -> None:
    sources = {}
    for inputs in default.mocks.of_type("aws:iam/role:Role"):
        (statement,) = json.loads(inputs["assumeRolePolicy"])["Statement"]
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
        (source,) = statement["Condition"]["ArnLike"].values()
        sources.setdefault(statement["Principal"]["Service"], set()).add(source)
    assert sources == {
        "ecs-tasks.amazonaws.com": {f"arn:aws:ecs:{REGION}:{ACCOUNT}:*"},
        "states.amazonaws.com": {default.exports["stateMachineArn"]},
    }


KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f0f0f0f-1111-2222-3333-444455556666"


def test_a_warehouse_key_encrypts_the_bucket_and_is_granted_through_s3() -> None:
    run = run_program({"kmsKeyArn": KMS_KEY})
    m = run.mocks
    (sse,) = m.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert sse["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "aws:kms",
                "kmsMasterKeyId": KMS_KEY,
            },
            "bucketKeyEnabled": True,
        }
    ]
    bucket_arn = f"arn:aws:s3:::{run.exports['bucketName']}"
    for job in ("parent", "child"):
        document = m.policy(f"klippers-{job}-task")
        assert document == policies.task_role_policy(bucket_arn, job, kms_key_arn=KMS_KEY)
    machine = _statements(m.policy("klippers-video-processing-role"))["UseWarehouseKey"]
    assert machine["Action"] == ["kms:Decrypt"]
    assert machine["Resource"] == [KMS_KEY]
    assert machine["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    }
    for inputs in m.of_type("aws:iam/rolePolicy:RolePolicy"):
        assert_least_privilege(json.loads(inputs["policy"]))


def test_without_a_key_no_role_may_use_kms(default: Run) -> None:
    for inputs in default.mocks.of_type("aws:iam/rolePolicy:RolePolicy"):
        actions = [a for s in json.loads(inputs["policy"])["Statement"] for a in s["Action"]]
        assert not [a for a in actions if a.startswith("kms:")]


def test_a_key_alias_is_refused() -> None:
    with pytest.raises(ValueError, match="kmsKeyArn: must be a KMS key ARN"):
        run_program({"kmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/warehouse"})


# --- the LLM scorer ------------------------------------------------------------------------

SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:klippers-llm-key-AbCdEf"


def test_the_parent_gets_the_llm_settings_and_its_key_only_through_secrets_manager() -> None:
    run = run_program(
        {
            "llmModel": "gpt-4o-mini",
            "llmBaseUrl": "https://api.openai.com/v1",
            "llmApiKeySecretArn": SECRET,
        }
    )
    _, parent = _containers(run.mocks, NAMES.parent_family)
    _, child = _containers(run.mocks, NAMES.child_family)
    env = {e["name"]: e["value"] for e in parent["environment"]}
    assert env[contract.ENV_LLM_PROVIDER] == "openai"
    assert env[contract.ENV_LLM_MODEL] == "gpt-4o-mini"
    assert env[contract.ENV_LLM_BASE_URL] == "https://api.openai.com/v1"
    assert contract.ENV_LLM_API_KEY not in env
    assert parent["secrets"] == [{"name": contract.ENV_LLM_API_KEY, "valueFrom": SECRET}]
    assert "secrets" not in child
    assert not any(e["name"].startswith(contract.ENV_LLM_PREFIX) for e in child["environment"])
    execution = _statements(run.mocks.policy("klippers-execution"))
    assert execution["InjectSecrets"]["Resource"] == [SECRET]
    assert execution["InjectSecrets"]["Action"] == ["secretsmanager:GetSecretValue"]
    for name in ("klippers-execution", "klippers-parent-task", "klippers-child-task"):
        assert_least_privilege(run.mocks.policy(name))
    assert "InvokeScorerModel" not in _statements(run.mocks.policy("klippers-parent-task"))


@pytest.mark.parametrize(
    ("model", "resources"),
    [
        (
            "anthropic.claude-3-haiku-20240307-v1:0",
            [f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"],
        ),
        (
            "eu.anthropic.claude-3-haiku-20240307-v1:0",
            [
                f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/"
                "eu.anthropic.claude-3-haiku-20240307-v1:0",
                "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            ],
        ),
    ],
)
def test_a_bedrock_scorer_may_invoke_only_its_model_and_only_from_the_parent(
    model: str, resources: list[str]
) -> None:
    run = run_program({"llmProvider": "bedrock", "llmModel": model})
    parent = _statements(run.mocks.policy("klippers-parent-task"))
    assert parent["InvokeScorerModel"]["Action"] == ["bedrock:InvokeModel"]
    assert parent["InvokeScorerModel"]["Resource"] == resources
    assert "InvokeScorerModel" not in _statements(run.mocks.policy("klippers-child-task"))
    assert "InjectSecrets" not in _statements(run.mocks.policy("klippers-execution"))
    assert_least_privilege(run.mocks.policy("klippers-parent-task"))


def test_without_llm_settings_no_job_sees_llm_variables_or_secrets(default: Run) -> None:
    for family in (NAMES.parent_family, NAMES.child_family):
        _, container = _containers(default.mocks, family)
        assert "secrets" not in container
        assert not any(e["name"].startswith("KLIPPERS_LLM_") for e in container["environment"])
    assert "InjectSecrets" not in _statements(default.mocks.policy("klippers-execution"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"llmModel": "m", "llmBaseUrl": "http://llm.example.com/v1"}, "llmBaseUrl: .*https://"),
        ({"llmModel": "m"}, "llmBaseUrl"),
        ({"llmModel": "m", "llmProvider": "claude"}, "llmProvider: must be one of openai"),
        (
            {"llmModel": "m", "llmBaseUrl": "https://h/v1", "llmApiKeySecretArn": "sk-live"},
            "llmApiKeySecretArn: must be a Secrets Manager ARN",
        ),
        ({"llmApiKeySecretArn": SECRET}, "llmModel: must be set when llmApiKeySecretArn"),
    ],
)
def test_bad_llm_settings_stop_the_program_naming_the_key(
    config: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run_program(config)


# --- Fargate Spot children (childCapacity) --------------------------------------------------


@pytest.fixture(scope="module")
def spot() -> Run:
    return run_program({"childCapacity": "spot"})


def _run_tasks(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (parent, child) RunTask parameters of the deployed definition."""
    machine, _ = run.mocks.one("aws:sfn/stateMachine:StateMachine")
    states = statemachine.all_states(json.loads(machine["definition"]))
    return (
        states[statemachine.RUN_PARENT]["Parameters"],
        states[statemachine.RENDER_SHORT]["Parameters"],
    )


def test_spot_children_get_fargate_spot_on_the_cluster_and_in_their_run_task(
    default: Run, spot: Run
) -> None:
    providers = "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders"
    assert default.mocks.of_type(providers) == []
    (attached,) = spot.mocks.of_type(providers)
    assert attached == {
        "clusterName": spot.exports["clusterName"],
        "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
    }
    parent, child = _run_tasks(spot)
    assert child["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    assert "LaunchType" not in child
    assert parent["LaunchType"] == "FARGATE"
    assert "CapacityProviderStrategy" not in parent
    assert [p["LaunchType"] for p in _run_tasks(default)] == ["FARGATE", "FARGATE"]


def test_spot_keeps_the_state_machine_role_able_to_run_both_jobs(spot: Run) -> None:
    """RunTask is granted on the two task definitions in this cluster, with no condition on
    the launch type or capacity provider, so the FARGATE_SPOT strategy is covered."""
    run_jobs = _statements(spot.mocks.policy("klippers-video-processing-role"))["RunJobs"]
    assert run_jobs["Resource"] == [
        spot.exports["parentTaskDefinitionArn"],
        spot.exports["childTaskDefinitionArn"],
    ]
    assert run_jobs["Condition"] == {"ArnEquals": {"ecs:cluster": spot.exports["clusterArn"]}}


@pytest.mark.parametrize("value", ["cheap", "FARGATE_SPOT", "Spot"])
def test_a_bad_child_capacity_stops_the_program_naming_the_key(value: str) -> None:
    with pytest.raises(
        ValueError, match=f"childCapacity: must be one of on-demand, spot .*{value}"
    ):
        run_program({"childCapacity": value})
