"""The Step Functions definition: structure, contract names, and the npm asl-validator."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from klippers import aws, contract
from klippers import statemachine as sm
from klippers.contract import VideoRef
from tests.klippers.asl_validator import find_validator, validate

ARGS: dict[str, Any] = {
    "cluster_arn": "arn:aws:ecs:eu-west-1:111122223333:cluster/klippers-abc",
    "parent_task_definition_arn": "arn:aws:ecs:eu-west-1:111122223333:task-definition/p:7",
    "child_task_definition_arn": "arn:aws:ecs:eu-west-1:111122223333:task-definition/c:9",
    "subnets": ["subnet-a", "subnet-b"],
    "security_groups": ["sg-1"],
    "bucket": "my-warehouse",
    "parent_container": "parent-box",
    "child_container": "child-box",
    "max_concurrency": 4,
    "parent_timeout_seconds": 1234,
    "child_timeout_seconds": 567,
}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return sm.build_definition(**ARGS)


@pytest.fixture(scope="module")
def validator() -> Path:
    return find_validator()


def _states(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["States"]


def _child(definition: dict[str, Any]) -> dict[str, Any]:
    return _states(definition)[sm.RENDER_SHORTS]["ItemProcessor"]["States"][sm.RENDER_SHORT]


def _env(task: dict[str, Any]) -> dict[str, str]:
    (override,) = task["Parameters"]["Overrides"]["ContainerOverrides"]
    return {e["Name"]: e.get("Value", e.get("Value.$")) for e in override["Environment"]}


def _next_of(definition: dict[str, Any], state: str) -> str:
    return _states(definition)[state]["Next"]


def test_the_happy_path_visits_the_states_in_order(definition: dict[str, Any]) -> None:
    path = [definition["StartAt"]]
    while "Next" in _states(definition)[path[-1]]:
        path.append(_next_of(definition, path[-1]))
    assert path == [sm.RUN_PARENT, sm.READ_CONFIG, sm.CHECK_SEGMENT_COUNT]
    choice = _states(definition)[sm.CHECK_SEGMENT_COUNT]
    assert choice["Choices"][0]["Next"] == sm.LIST_SEGMENTS
    assert _next_of(definition, sm.LIST_SEGMENTS) == sm.RENDER_SHORTS
    assert _next_of(definition, sm.RENDER_SHORTS) == sm.DONE
    assert _states(definition)[sm.DONE] == {"Type": "Succeed"}
    assert definition["TimeoutSeconds"] == sm.DEFAULT_EXECUTION_TIMEOUT_SECONDS


def test_parent_runs_on_fargate_with_the_video_environment(definition: dict[str, Any]) -> None:
    parent = _states(definition)[sm.RUN_PARENT]
    assert parent["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    params = parent["Parameters"]
    assert params["Cluster"] == ARGS["cluster_arn"]
    assert params["TaskDefinition"] == ARGS["parent_task_definition_arn"]
    assert params["LaunchType"] == "FARGATE"
    assert params["NetworkConfiguration"]["AwsvpcConfiguration"] == {
        "Subnets": ["subnet-a", "subnet-b"],
        "SecurityGroups": ["sg-1"],
        "AssignPublicIp": "ENABLED",
    }
    assert params["Overrides"]["ContainerOverrides"][0]["Name"] == "parent-box"
    assert _env(parent) == {
        "USER_ID": "$.user_id",
        "VIDEO_ID": "$.video_id",
        "VIDEO_WAREHOUSE_S3_BUCKET_NAME": "my-warehouse",
    }
    assert parent["TimeoutSeconds"] == 1234
    assert parent["ResultPath"] is None


def test_parent_retries_transient_errors_and_then_fails_by_name(
    definition: dict[str, Any],
) -> None:
    parent = _states(definition)[sm.RUN_PARENT]
    retried = {e for r in parent["Retry"] for e in r["ErrorEquals"]}
    assert {"ECS.AmazonECSException", "ECS.ServerException", "States.TaskFailed"} <= retried
    assert "States.ALL" not in retried
    assert sum(r["MaxAttempts"] for r in parent["Retry"] if "States.TaskFailed" in r["ErrorEquals"])
    assert parent["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ParentTaskFailed"}
    ]
    assert _states(definition)["ParentTaskFailed"]["Type"] == "Fail"
    assert _states(definition)["ParentTaskFailed"]["Error"] == "ParentTaskFailed"


def test_config_is_read_from_the_contract_key_and_parsed(definition: dict[str, Any]) -> None:
    read = _states(definition)[sm.READ_CONFIG]
    assert read["Resource"] == "arn:aws:states:::aws-sdk:s3:getObject"
    assert read["Parameters"] == {
        "Bucket": "my-warehouse",
        "Key.$": "States.Format('klippers_warehouse/{}/{}/shorts_config.json', "
        "$.user_id, $.video_id)",
    }
    assert read["ResultSelector"] == {"config.$": "States.StringToJson($.Body)"}
    assert read["ResultPath"] == "$.shorts"
    assert read["TimeoutSeconds"] > 0
    assert read["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    assert read["Catch"][0]["Next"] == "ReadConfigFailed"
    assert _states(definition)["ReadConfigFailed"]["Type"] == "Fail"


def _holds(rule: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Evaluate the Choice rule operators the definition uses (anything else is an error)."""
    if "And" in rule:
        return all(_holds(r, doc) for r in rule["And"])
    path = rule["Variable"].removeprefix("$.").split(".")
    value: Any = doc
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return rule.get("IsPresent") is False
        value = value[part]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    (operator,) = (k for k in rule if k not in ("Variable", "Next"))
    operand = rule[operator]
    checks = {
        "IsPresent": lambda: operand is True,
        "IsNumeric": lambda: numeric is operand,
        "NumericEquals": lambda: numeric and value == operand,
        "NumericGreaterThanEquals": lambda: numeric and value >= operand,
        "NumericLessThanEquals": lambda: numeric and value <= operand,
    }
    return bool(checks[operator]())


def _choose(definition: dict[str, Any], config: dict[str, Any]) -> str:
    choice = _states(definition)[sm.CHECK_SEGMENT_COUNT]
    doc = {"shorts": {"config": config}}
    return next((r["Next"] for r in choice["Choices"] if _holds(r, doc)), choice["Default"])


@pytest.mark.parametrize(
    ("config", "target"),
    [
        ({"segment_count": 0}, sm.DONE),
        ({"segment_count": 1}, sm.LIST_SEGMENTS),
        ({"segment_count": 50}, sm.LIST_SEGMENTS),
        ({"segment_count": 51}, sm.INVALID_SEGMENT_COUNT),
        ({"segment_count": -1}, sm.INVALID_SEGMENT_COUNT),
        ({"segment_count": "3"}, sm.INVALID_SEGMENT_COUNT),
        ({}, sm.INVALID_SEGMENT_COUNT),
    ],
)
def test_segment_count_zero_succeeds_without_reaching_the_map(
    definition: dict[str, Any], config: dict[str, Any], target: str
) -> None:
    assert _choose(definition, config) == target


def test_segments_come_from_array_range_of_segment_count(definition: dict[str, Any]) -> None:
    listing = _states(definition)[sm.LIST_SEGMENTS]
    assert listing["Parameters"] == {
        "numbers.$": "States.ArrayRange(1, $.shorts.config.segment_count, 1)"
    }
    assert _states(definition)[sm.RENDER_SHORTS]["ItemsPath"] == "$.segments.numbers"


def test_map_runs_children_with_bounded_concurrency(definition: dict[str, Any]) -> None:
    render = _states(definition)[sm.RENDER_SHORTS]
    assert render["Type"] == "Map"
    assert render["MaxConcurrency"] == 4
    assert render["ItemSelector"]["segment.$"] == "$$.Map.Item.Value"
    assert render["ResultPath"] is None
    assert render["Catch"][0]["Next"] == "ChildTasksFailed"
    assert _states(definition)["ChildTasksFailed"]["Type"] == "Fail"
    child = _child(definition)
    assert child["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    assert child["Parameters"]["TaskDefinition"] == ARGS["child_task_definition_arn"]
    assert child["Parameters"]["Overrides"]["ContainerOverrides"][0]["Name"] == "child-box"
    assert _env(child) == {
        "USER_ID": "$.user_id",
        "VIDEO_ID": "$.video_id",
        "SEGMENT": "States.Format('{}', $.segment)",
        "VIDEO_WAREHOUSE_S3_BUCKET_NAME": "my-warehouse",
    }
    assert child["TimeoutSeconds"] == 567
    assert child["ResultPath"] is None
    assert child["End"] is True


def test_child_retry_waits_30_then_60_seconds(definition: dict[str, Any]) -> None:
    (retry,) = _child(definition)["Retry"]
    assert "States.TaskFailed" in retry["ErrorEquals"]
    assert (retry["IntervalSeconds"], retry["MaxAttempts"], retry["BackoffRate"]) == (30, 2, 2.0)
    waits = [retry["IntervalSeconds"] * retry["BackoffRate"] ** i for i in range(2)]
    assert waits == [30, 60]


def test_every_task_has_a_timeout(definition: dict[str, Any]) -> None:
    tasks = [s for s in _states(definition).values() if s["Type"] == "Task"]
    tasks.append(_child(definition))
    assert len(tasks) == 3
    assert all(isinstance(t["TimeoutSeconds"], int) and t["TimeoutSeconds"] > 0 for t in tasks)


def test_defaults_and_public_ip_switch() -> None:
    minimal = {k: v for k, v in ARGS.items() if not k.endswith(("container", "seconds"))}
    minimal.pop("max_concurrency")
    built = sm.build_definition(**minimal, assign_public_ip=False)
    assert _states(built)[sm.RENDER_SHORTS]["MaxConcurrency"] == 10
    assert _child(built)["TimeoutSeconds"] == sm.DEFAULT_CHILD_TIMEOUT_SECONDS
    params = _child(built)["Parameters"]
    assert params["Overrides"]["ContainerOverrides"][0]["Name"] == aws.CHILD_CONTAINER
    assert params["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cluster_arn", "not-an-arn"),
        ("cluster_arn", ARGS["parent_task_definition_arn"]),
        ("parent_task_definition_arn", ARGS["cluster_arn"]),
        ("child_task_definition_arn", ""),
        ("subnets", []),
        ("subnets", "subnet-a"),
        ("security_groups", ["sg 1"]),
        ("bucket", "Bad_Bucket"),
        ("max_concurrency", 0),
        ("max_concurrency", True),
        ("max_concurrency", 1001),
        ("child_timeout_seconds", 0),
        ("parent_timeout_seconds", 1.5),
    ],
)
def test_bad_parameters_are_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(sm.DefinitionError, match=f"^{field}"):
        sm.build_definition(**{**ARGS, field: value})


def test_execution_input_and_placeholder_json() -> None:
    assert sm.execution_input(VideoRef("u1", "v1")) == {"user_id": "u1", "video_id": "v1"}
    text = sm.definition_json()
    assert json.loads(text) == sm.build_definition(**sm.PLACEHOLDERS)
    changed = json.loads(sm.definition_json(max_concurrency=3))
    assert changed["States"][sm.RENDER_SHORTS]["MaxConcurrency"] == 3


def test_names_come_from_the_contract_module_not_copies() -> None:
    """Renaming in klippers.contract alone must change the definition."""
    script = (
        "import json, klippers.contract as c\n"
        "c.ENV_SEGMENT = 'SEG_RENAMED'\n"
        "c.SHORTS_CONFIG = 'renamed.json'\n"
        "c.WAREHOUSE_ROOT = 'root_renamed'\n"
        "from klippers import statemachine as sm\n"
        "print(sm.definition_json())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    renamed = json.loads(result.stdout)
    child = renamed["States"][sm.RENDER_SHORTS]["ItemProcessor"]["States"][sm.RENDER_SHORT]
    assert set(_env(child)) == {"USER_ID", "VIDEO_ID", "SEG_RENAMED", contract.ENV_BUCKET}
    key = renamed["States"][sm.READ_CONFIG]["Parameters"]["Key.$"]
    assert "'root_renamed/{}/{}/renamed.json'" in key


# --- npm asl-validator ----------------------------------------------------------------------


def test_the_printed_placeholder_definition_passes_asl_validator(
    validator: Path, tmp_path: Path
) -> None:
    verdict = validate(validator, json.loads(sm.definition_json()), tmp_path)
    assert verdict.valid, verdict.output


@pytest.mark.parametrize("max_concurrency", [1, 1000])
def test_the_built_definition_passes_asl_validator(
    validator: Path, tmp_path: Path, max_concurrency: int
) -> None:
    verdict = validate(
        validator, sm.build_definition(**{**ARGS, "max_concurrency": max_concurrency}), tmp_path
    )
    assert verdict.valid, verdict.output


def _break_missing_target(d: dict[str, Any]) -> None:
    d["States"][sm.RUN_PARENT]["Catch"][0]["Next"] = "NoSuchState"


def _break_unreachable(d: dict[str, Any]) -> None:
    d["States"]["Orphan"] = {"Type": "Succeed"}


def _break_intrinsic(d: dict[str, Any]) -> None:
    d["States"][sm.LIST_SEGMENTS]["Parameters"]["numbers.$"] = "States.ArrayRange(1, $..[, 1)"


def _break_type(d: dict[str, Any]) -> None:
    d["States"][sm.RENDER_SHORTS]["MaxConcurrency"] = "10"


def _break_child_end(d: dict[str, Any]) -> None:
    del d["States"][sm.RENDER_SHORTS]["ItemProcessor"]["States"][sm.RENDER_SHORT]["End"]


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (_break_missing_target, "NoSuchState"),
        (_break_unreachable, "Orphan is not reachable"),
        (_break_intrinsic, "numbers.$"),
        (_break_type, "MaxConcurrency"),
        (_break_child_end, "RenderShort"),
    ],
)
def test_a_broken_definition_fails_asl_validator(
    validator: Path, tmp_path: Path, definition: dict[str, Any], breaker: Any, message: str
) -> None:
    broken = copy.deepcopy(definition)
    breaker(broken)
    verdict = validate(validator, broken, tmp_path)
    assert not verdict.valid
    assert message in verdict.output


def test_missing_validator_skips_locally_but_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.klippers import asl_validator

    monkeypatch.setattr(asl_validator, "VALIDATOR_BIN", tmp_path / "absent")
    monkeypatch.setattr(asl_validator.shutil, "which", lambda _name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        asl_validator.find_validator()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="node/npm not found"):
        asl_validator.find_validator()


def test_klip_cloud_definition_prints_the_built_definition() -> None:
    import json

    from click.testing import CliRunner

    from klippers.cli import cli
    from klippers.statemachine import definition_json

    result = CliRunner().invoke(cli, ["cloud", "definition"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(definition_json())
    assert "ChildTasksFailed" in json.loads(result.output)["States"]
