"""The stack switch ``shardTranscription``: a shard task definition and role that write only
``transcript-shards/``, a state machine that runs it and reads the plan, nothing when off."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from klippers import contract, statemachine
from klippers.aws import SHARD_CONTAINER, SHARD_EPHEMERAL_GIB, SHARD_SIZE
from tests.infra.test_infra import (
    NAMES,
    Run,
    _containers,
    _statements,
    assert_least_privilege,
    policies,
    run_program,
)

SHARD_ROLE = "klippers-shard-task"
MACHINE_ROLE = "klippers-video-processing-role"


@pytest.fixture(scope="module")
def sharded() -> Run:
    return run_program(
        {"shardTranscription": "true", "shardTimeoutSeconds": "1800", "parentTimeoutSeconds": "900"}
    )


@pytest.fixture(scope="module")
def plain() -> Run:
    return run_program({})


def _definition(run: Run) -> dict[str, Any]:
    machine, _ = run.mocks.one("aws:sfn/stateMachine:StateMachine")
    return dict(json.loads(machine["definition"]))


def test_sharding_adds_one_task_definition_with_its_own_role(plain: Run, sharded: Run) -> None:
    before = Counter(t for t, *_ in plain.mocks.resources)
    after = Counter(t for t, *_ in sharded.mocks.resources)
    after.subtract(before)
    assert {t: n for t, n in after.items() if n} == {
        "aws:ecs/taskDefinition:TaskDefinition": 1,
        "aws:iam/role:Role": 1,
        "aws:iam/rolePolicy:RolePolicy": 1,
    }
    assert "shardTaskDefinitionArn" not in plain.exports
    assert sharded.exports["shardTaskDefinitionArn"].startswith("arn:aws:ecs:")


def test_the_shard_task_runs_the_shard_job_on_its_size(sharded: Run) -> None:
    m = sharded.mocks
    task, container = _containers(m, NAMES.shard_family)
    assert (task["cpu"], task["memory"]) == (str(SHARD_SIZE.cpu_units), str(SHARD_SIZE.memory_mib))
    assert task["ephemeralStorage"] == {"sizeInGib": SHARD_EPHEMERAL_GIB}
    assert task["taskRoleArn"] == m.role_arn(SHARD_ROLE)
    assert task["executionRoleArn"] == m.role_arn("klippers-execution")
    assert container["name"] == SHARD_CONTAINER
    assert container["command"] == ["python", "-m", contract.SHARD_JOB_MODULE]
    assert container["logConfiguration"]["options"]["awslogs-stream-prefix"] == "shard"
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env == {
        contract.ENV_BUCKET: sharded.exports["bucketName"],
        "KLIPPERS_LOG_FORMAT": "json",
    }


def test_the_shard_role_writes_and_deletes_only_transcript_shards(sharded: Run) -> None:
    bucket_arn = f"arn:aws:s3:::{sharded.exports['bucketName']}"
    document = sharded.mocks.policy(SHARD_ROLE)
    assert document == policies.task_role_policy(bucket_arn, "shard")
    assert_least_privilege(document)
    statements = _statements(document)
    shards = f"{bucket_arn}/klippers_warehouse/*/*/transcript-shards"
    assert statements["WriteWarehouse"]["Resource"] == [f"{shards}/*"]
    assert statements["DeleteStaleOutputs"]["Resource"] == [f"{shards}/*.recipe.json"]
    assert "ReadSharedBackgrounds" not in statements


def test_the_state_machine_may_run_the_shards_and_read_only_their_plan(
    plain: Run, sharded: Run
) -> None:
    m = sharded.mocks
    statements = _statements(m.policy(MACHINE_ROLE))
    assert statements["RunJobs"]["Resource"] == [
        sharded.exports["parentTaskDefinitionArn"],
        sharded.exports["childTaskDefinitionArn"],
        sharded.exports["shardTaskDefinitionArn"],
    ]
    assert statements["PassJobRoles"]["Resource"] == [
        m.role_arn("klippers-parent-task"),
        m.role_arn("klippers-child-task"),
        m.role_arn(SHARD_ROLE),
        m.role_arn("klippers-execution"),
    ]
    bucket = sharded.exports["bucketName"]
    assert statements["ReadShardPlan"]["Resource"] == [
        f"arn:aws:s3:::{bucket}/klippers_warehouse/*/*/transcript-shards/plan.json"
    ]
    assert "ReadShardPlan" not in _statements(plain.mocks.policy(MACHINE_ROLE))


def test_the_definition_plans_shards_with_the_deployed_task_and_limits(
    plain: Run, sharded: Run
) -> None:
    definition = _definition(sharded)
    assert definition["StartAt"] == statemachine.PLAN_JOB
    states = statemachine.all_states(definition)
    shard_tasks = [
        state
        for state in states.values()
        if state.get("Parameters", {}).get("TaskDefinition")
        == sharded.exports["shardTaskDefinitionArn"]
    ]
    assert len(shard_tasks) == 2, "the plan task and the window task"
    assert {state["TimeoutSeconds"] for state in shard_tasks} == {1800}
    assert states[statemachine.RUN_PARENT]["TimeoutSeconds"] == 900
    assert _definition(plain)["StartAt"] == statemachine.PARENT_JOB


def test_the_parent_knows_its_time_limit(sharded: Run) -> None:
    _, container = _containers(sharded.mocks, NAMES.parent_family)
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env[contract.ENV_PARENT_TIMEOUT] == "900"


def test_a_bad_shard_timeout_stops_the_program_naming_it() -> None:
    with pytest.raises(ValueError, match="shard_timeout_seconds"):
        run_program({"shardTranscription": "true", "shardTimeoutSeconds": "-5"})


def test_an_unknown_job_kind_gets_no_policy() -> None:
    with pytest.raises(ValueError, match="job: must be one of parent, child, shard"):
        policies.task_role_policy("arn:aws:s3:::b", "render")
