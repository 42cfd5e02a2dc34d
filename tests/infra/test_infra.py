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
from klippers.aws import CHILD_CONTAINER, PARENT_CONTAINER, TaskSize
from klippers.contract import DEFAULT_ASR_MODEL

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
sys.path.insert(0, str(INFRA))

from klippers_infra import policies, tasks  # noqa: E402

ACCOUNT = "123456789012"
REGION = "eu-west-1"
DIGEST = "sha256:" + "d" * 64
DEFAULT_SUBNETS = ["subnet-0aaa", "subnet-0bbb"]


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
            out.update(name=f"{name}-c1", arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}-c1")
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


def run_program(config: dict[str, str]) -> Run:
    """Run ``infra/__main__.py`` under fresh mocks with ``config``; wait for every resource."""
    mocks = Recorder()
    pulumi.runtime.set_mocks(mocks, project="klippers", stack="test", preview=False)
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
            "ephemeralStorageGib": "150",
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
    assert_least_privilege(policies.task_role_policy(bucket, writes_only_shorts=False))
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
    assert bucket_in == {"bucketPrefix": "klippers-warehouse-"}
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
        ("klippers-parent", contract.PARENT_JOB_MODULE, PARENT_CONTAINER),
        ("klippers-child", contract.CHILD_JOB_MODULE, CHILD_CONTAINER),
    ],
)
def test_task_definitions_run_the_jobs_on_fargate(
    default: Run, family: str, module: str, container_name: str
) -> None:
    m = default.mocks
    task, container = _containers(m, family)
    job = family.removeprefix("klippers-")
    assert task["cpu"] == "16384"
    assert task["memory"] == "65536"
    assert task["ephemeralStorage"] == {"sizeInGib": 100}
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
    assert env == {
        contract.ENV_BUCKET: default.exports["bucketName"],
        "KLIPPERS_LOG_FORMAT": "json",
    }
    logs = container["logConfiguration"]
    assert logs["logDriver"] == "awslogs"
    assert logs["options"]["awslogs-group"] == "/ecs/klippers-jobs"
    assert logs["options"]["awslogs-region"] == REGION
    assert logs["options"]["awslogs-stream-prefix"] == job


def test_log_groups_have_retention(default: Run) -> None:
    groups = {g["name"]: g for g in default.mocks.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert set(groups) == {"/ecs/klippers-jobs", "/aws/stepfunctions/klippers-video-processing"}
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
    assert trusted.pop("klippers-step-functions-role") == "states.amazonaws.com"
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
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/klippers-jobs:log-stream:*"
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
    assert machine["name"] == "klippers-video-processing"
    assert machine["type"] == "STANDARD"
    assert machine["roleArn"] == m.role_arn("klippers-video-processing-role")
    assert machine["loggingConfiguration"] == {
        "level": "ALL",
        "includeExecutionData": True,
        "logDestination": (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
            "/aws/stepfunctions/klippers-video-processing:*"
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
    assert exports["clusterArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/klippers-c1"
    assert exports["parentTaskDefinitionArn"].endswith("task-definition/klippers-parent:4")


def test_stack_outputs(default: Run) -> None:
    assert default.exports == {
        "stateMachineArn": (
            f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:klippers-video-processing"
        ),
        "stateMachineName": "klippers-video-processing",
        "stateMachineLogGroup": "/aws/stepfunctions/klippers-video-processing",
        "bucketName": "klippers-warehouse-20250101",
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/klippers-c1",
        "clusterName": "klippers-c1",
        "jobsLogGroup": "/ecs/klippers-jobs",
        "parentTaskDefinitionArn": (
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/klippers-parent:4"
        ),
        "childTaskDefinitionArn": (
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/klippers-child:4"
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
    parent, _ = _containers(m, "klippers-parent")
    child, _ = _containers(m, "klippers-child")
    assert (parent["cpu"], parent["memory"]) == ("8192", "32768")
    assert (child["cpu"], child["memory"]) == ("4096", "16384")
    assert child["ephemeralStorage"] == {"sizeInGib": 150}
    assert {g["retentionInDays"] for g in m.of_type("aws:cloudwatch/logGroup:LogGroup")} == {7}
    assert m.one("awsx:ecr:Image")[0]["args"] == {"ASR_MODEL": "base.en"}
    machine, _ = m.one("aws:sfn/stateMachine:StateMachine")
    definition = json.loads(machine["definition"])
    render = definition["States"][statemachine.RENDER_SHORTS]
    assert render["MaxConcurrency"] == 25
    child_state = render["ItemProcessor"]["States"][statemachine.RENDER_SHORT]
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
        ({"ephemeralStorageGib": "500"}, "ephemeral_gib"),
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
