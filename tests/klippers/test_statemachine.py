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
    return sm.all_states(definition)[sm.RENDER_SHORT]


def _parent(definition: dict[str, Any]) -> dict[str, Any]:
    return sm.all_states(definition)[sm.RUN_PARENT]


def _env(task: dict[str, Any]) -> dict[str, str]:
    (override,) = task["Parameters"]["Overrides"]["ContainerOverrides"]
    return {e["Name"]: e.get("Value", e.get("Value.$")) for e in override["Environment"]}


def _next_of(definition: dict[str, Any], state: str) -> str:
    return _states(definition)[state]["Next"]


def test_the_happy_path_visits_the_states_in_order(definition: dict[str, Any]) -> None:
    path = [definition["StartAt"]]
    while "Next" in _states(definition)[path[-1]]:
        path.append(_next_of(definition, path[-1]))
    assert path == [sm.PARENT_JOB, sm.READ_CONFIG, sm.CHECK_SEGMENT_COUNT]
    choice = _states(definition)[sm.CHECK_SEGMENT_COUNT]
    assert choice["Choices"][0]["Next"] == sm.LIST_SEGMENTS
    assert _next_of(definition, sm.LIST_SEGMENTS) == sm.RENDER_SHORTS
    assert _next_of(definition, sm.RENDER_SHORTS) == sm.CHECK_SHORTS
    assert _states(definition)[sm.CHECK_SHORTS]["Default"] == sm.DONE
    assert _states(definition)[sm.DONE] == {"Type": "Succeed"}
    assert definition["TimeoutSeconds"] == sm.DEFAULT_EXECUTION_TIMEOUT_SECONDS


def test_parent_runs_on_fargate_with_the_video_environment(definition: dict[str, Any]) -> None:
    parent = _parent(definition)
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


@pytest.mark.parametrize(
    ("wrapper", "names", "caught_by"),
    [
        (sm.PARENT_JOB, sm.PARENT_NAMES, sm.PARENT_TASK_FAILED),
        (sm.SHORT_JOB, sm.CHILD_NAMES, sm.SHORT_FAILED),
    ],
)
def test_each_job_retries_only_job_failures_30_then_60_seconds(
    definition: dict[str, Any], wrapper: str, names: sm.JobStates, caught_by: str
) -> None:
    """Retry matches error names only, so a Choice turns the exit code into one."""
    job = sm.all_states(definition)[wrapper]
    assert job["Type"] == "Parallel"
    (retry,) = job["Retry"]
    assert retry["ErrorEquals"] == [sm.ERROR_JOB_FAILED]
    assert (retry["IntervalSeconds"], retry["MaxAttempts"], retry["BackoffRate"]) == (30, 2, 2.0)
    assert job["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": caught_by}
    ]
    (branch,) = job["Branches"]
    task = branch["States"][names.task]
    assert "Retry" not in task
    assert task["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": names.check_exit}
    ]
    fails = {
        state["Error"]: state["CausePath"]
        for state in branch["States"].values()
        if state["Type"] == "Fail"
    }
    assert fails == dict.fromkeys(
        [sm.ERROR_BAD_INPUT, sm.ERROR_TIMED_OUT, sm.ERROR_JOB_FAILED],
        "States.JsonToString($.error)",
    )


def test_bad_input_is_recognised_by_the_job_exit_code_in_the_cause(
    definition: dict[str, Any],
) -> None:
    check = sm.all_states(definition)[sm.PARENT_NAMES.check_exit]
    (patterns,) = [rule["Or"] for rule in check["Choices"] if "Or" in rule]
    assert {rule["StringMatches"] for rule in patterns} == {
        f'*"ExitCode":{contract.EXIT_BAD_INPUT},*',
        f'*"ExitCode":{contract.EXIT_BAD_INPUT}}}*',
        f'*"ExitCode": {contract.EXIT_BAD_INPUT},*',
        f'*"ExitCode": {contract.EXIT_BAD_INPUT}}}*',
    }
    assert check["Default"] == sm.PARENT_NAMES.attempt_failed


def test_fail_states_report_the_caught_error(definition: dict[str, Any]) -> None:
    for name in (sm.PARENT_TASK_FAILED, sm.READ_CONFIG_FAILED, sm.CHILD_TASKS_FAILED):
        assert _states(definition)[name] == {
            "Type": "Fail",
            "Error": name,
            "CausePath": "States.JsonToString($.error)",
        }


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
    assert render["ResultPath"] == "$.rendered"
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


def test_every_child_ends_in_an_outcome_so_no_failure_stops_the_map(
    definition: dict[str, Any],
) -> None:
    processor = _states(definition)[sm.RENDER_SHORTS]["ItemProcessor"]["States"]
    assert processor[sm.SHORT_JOB]["Next"] == sm.SHORT_RENDERED
    assert processor[sm.SHORT_JOB]["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    assert processor[sm.SHORT_RENDERED]["Parameters"] == {"segment.$": "$.segment", "failed": False}
    assert processor[sm.SHORT_FAILED]["Parameters"] == {
        "segment.$": "$.segment",
        "failed": True,
        "error.$": "$.error.Error",
    }
    assert all(processor[s]["End"] for s in (sm.SHORT_RENDERED, sm.SHORT_FAILED))


def test_every_task_has_a_timeout(definition: dict[str, Any]) -> None:
    tasks = [s for s in sm.all_states(definition).values() if s["Type"] == "Task"]
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
    child = sm.all_states(renamed)[sm.RENDER_SHORT]
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
    d["States"][sm.PARENT_JOB]["Catch"][0]["Next"] = "NoSuchState"


def _break_unreachable(d: dict[str, Any]) -> None:
    d["States"]["Orphan"] = {"Type": "Succeed"}


def _break_intrinsic(d: dict[str, Any]) -> None:
    d["States"][sm.LIST_SEGMENTS]["Parameters"]["numbers.$"] = "States.ArrayRange(1, $..[, 1)"


def _break_type(d: dict[str, Any]) -> None:
    d["States"][sm.RENDER_SHORTS]["MaxConcurrency"] = "10"


def _break_child_end(d: dict[str, Any]) -> None:
    del sm.all_states(d)[sm.SHORT_RENDERED]["End"]


def _break_filter(d: dict[str, Any]) -> None:
    d["States"][sm.REPORT_FAILED_SHORTS]["Parameters"]["Shorts.$"] = "$.rendered[?(@.failed"


def _break_exit_pattern(d: dict[str, Any]) -> None:
    check = sm.all_states(d)[sm.CHILD_NAMES.check_exit]
    next(r for r in check["Choices"] if "Or" in r)["Or"][0]["StringMatches"] = 2


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (_break_missing_target, "NoSuchState"),
        (_break_unreachable, "Orphan is not reachable"),
        (_break_intrinsic, "numbers.$"),
        (_break_type, "MaxConcurrency"),
        (_break_child_end, "ShortRendered"),
        (_break_filter, "Shorts.$"),
        (_break_exit_pattern, "StringMatches"),
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


# --- Fargate Spot children (stack config childCapacity) -------------------------------------


def _placement(task: dict[str, Any]) -> dict[str, Any]:
    params = task["Parameters"]
    return {k: params[k] for k in ("LaunchType", "CapacityProviderStrategy") if k in params}


def test_spot_children_run_with_a_fargate_spot_strategy_and_the_parent_on_demand(
    definition: dict[str, Any],
) -> None:
    spot = sm.build_definition(**ARGS, child_capacity=aws.SPOT)
    assert _placement(_child(spot)) == {
        "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    }
    assert _placement(_parent(spot)) == {"LaunchType": "FARGATE"}
    assert _placement(_child(definition)) == {"LaunchType": "FARGATE"}
    assert sm.build_definition(**ARGS, child_capacity=aws.ON_DEMAND) == definition
    # Nothing else changes: same states, same retry and classification.
    on_demand = copy.deepcopy(spot)
    child = sm.all_states(on_demand)[sm.RENDER_SHORT]["Parameters"]
    del child["CapacityProviderStrategy"]
    child["LaunchType"] = "FARGATE"
    assert on_demand == definition


@pytest.mark.parametrize("names", [sm.PARENT_NAMES, sm.CHILD_NAMES])
def test_a_spot_interruption_is_a_job_failure_whatever_the_exit_code(
    definition: dict[str, Any], names: sm.JobStates
) -> None:
    """The StopCode rules come before the exit-code ones, so a 2 from a job being shut
    down is retried too; 143 and a missing ExitCode fall through to the default anyway."""
    rules = sm.all_states(definition)[names.check_exit]["Choices"]
    spot = [
        i for i, rule in enumerate(rules) if "SpotInterruption" in rule.get("StringMatches", "")
    ]
    assert {rules[i]["StringMatches"] for i in spot} == {
        '*"StopCode":"SpotInterruption"*',
        '*"StopCode": "SpotInterruption"*',
    }
    assert {rules[i]["Next"] for i in spot} == {names.attempt_failed}
    (bad_input,) = [i for i, rule in enumerate(rules) if rule["Next"] == names.bad_input]
    assert max(spot) < bad_input


def test_an_unknown_child_capacity_is_refused_by_name() -> None:
    with pytest.raises(
        sm.DefinitionError, match=r"^child_capacity: must be one of on-demand, spot"
    ):
        sm.build_definition(**ARGS, child_capacity="FARGATE_SPOT")


def test_the_spot_definition_passes_asl_validator(validator: Path, tmp_path: Path) -> None:
    verdict = validate(validator, sm.build_definition(**ARGS, child_capacity=aws.SPOT), tmp_path)
    assert verdict.valid, verdict.output


# --- sharded transcription --------------------------------------------------------------------

SHARD_TD = "arn:aws:ecs:eu-west-1:111122223333:task-definition/s:3"


@pytest.fixture(scope="module")
def sharded() -> dict[str, Any]:
    return sm.build_definition(
        **ARGS, shard_task_definition_arn=SHARD_TD, shard_container="shard-box"
    )


def test_without_a_shard_task_definition_the_seed_flow_is_unchanged(
    definition: dict[str, Any],
) -> None:
    assert definition["StartAt"] == sm.PARENT_JOB
    assert not {sm.PLAN_JOB, sm.TRANSCRIBE_SHARDS, sm.SHARD_TASKS_FAILED} & set(
        sm.all_states(definition)
    )


def test_sharded_flow_plans_then_transcribes_windows_before_the_unchanged_parent(
    definition: dict[str, Any], sharded: dict[str, Any]
) -> None:
    assert sharded["StartAt"] == sm.PLAN_JOB
    assert _next_of(sharded, sm.PLAN_JOB) == sm.READ_SHARD_PLAN
    assert _next_of(sharded, sm.READ_SHARD_PLAN) == sm.CHECK_SHARD_COUNT
    check = _states(sharded)[sm.CHECK_SHARD_COUNT]
    assert [rule["Next"] for rule in check["Choices"]] == [sm.LIST_SHARDS, sm.PARENT_JOB]
    assert check["Default"] == sm.INVALID_SHARD_COUNT
    assert _next_of(sharded, sm.LIST_SHARDS) == sm.TRANSCRIBE_SHARDS
    assert _next_of(sharded, sm.TRANSCRIBE_SHARDS) == sm.PARENT_JOB
    for name, state in definition["States"].items():
        assert _states(sharded)[name] == state, name


def test_plan_and_windows_run_the_shard_job_on_demand(sharded: dict[str, Any]) -> None:
    states = sm.all_states(sharded)
    for task, shard in (
        (sm.RUN_PLAN, "plan"),
        (sm.TRANSCRIBE_SHARD, "States.Format('{}', $.shard)"),
    ):
        parameters = states[task]["Parameters"]
        assert parameters["TaskDefinition"] == SHARD_TD
        assert parameters["LaunchType"] == aws.FARGATE
        (override,) = parameters["Overrides"]["ContainerOverrides"]
        assert override["Name"] == "shard-box"
        assert _env(states[task])[contract.ENV_SHARD] == shard
        assert states[task]["TimeoutSeconds"] == sm.DEFAULT_SHARD_TIMEOUT_SECONDS
    windows = states[sm.TRANSCRIBE_SHARDS]
    assert windows["MaxConcurrency"] == ARGS["max_concurrency"]
    assert windows["ItemsPath"] == "$.transcription.shards.numbers"
    listed = states[sm.LIST_SHARDS]["Parameters"]["numbers.$"]
    assert listed == "States.ArrayRange(1, $.transcription.plan.shard_count, 1)"


@pytest.mark.parametrize(
    ("wrapper", "names", "caught_by"),
    [
        (sm.PLAN_JOB, sm.PLAN_NAMES, sm.SHARD_PLAN_FAILED),
        (sm.SHARD_JOB, sm.SHARD_NAMES, sm.SHARD_FAILED),
    ],
)
def test_plan_and_windows_keep_the_job_retry_policy(
    sharded: dict[str, Any], wrapper: str, names: sm.JobStates, caught_by: str
) -> None:
    job = sm.all_states(sharded)[wrapper]
    (retry,) = job["Retry"]
    assert retry == {"ErrorEquals": [sm.ERROR_JOB_FAILED], **sm.JOB_RETRY}
    assert job["Catch"][0]["Next"] == caught_by
    check = sm.all_states(sharded)[names.check_exit]
    assert check == {
        **sm.all_states(sm.build_definition(**ARGS))[sm.PARENT_NAMES.check_exit],
        "Choices": check["Choices"],
        "Default": names.attempt_failed,
    }
    assert any(rule.get("Next") == names.bad_input for rule in check["Choices"])


def test_a_failed_window_is_named_in_the_shard_tasks_failed_cause(
    sharded: dict[str, Any],
) -> None:
    states = sm.all_states(sharded)
    assert states[sm.SHARD_FAILED]["Parameters"]["Shard.$"] == "$.shard"
    assert states[sm.REPORT_SHARD_FAILURE]["Error"] == sm.ERROR_SHARD_FAILED
    assert states[sm.TRANSCRIBE_SHARDS]["Catch"][0]["Next"] == sm.SHARD_TASKS_FAILED
    for name in (sm.SHARD_PLAN_FAILED, sm.SHARD_TASKS_FAILED):
        assert states[name]["CausePath"] == "States.JsonToString($.error)"


def test_the_plan_is_read_from_the_contract_key(sharded: dict[str, Any]) -> None:
    read = _states(sharded)[sm.READ_SHARD_PLAN]
    key = read["Parameters"]["Key.$"]
    assert f"/{contract.SHARDS_DIR}/{contract.SHARD_PLAN}'" in key
    assert read["Catch"][0]["Next"] == sm.SHARD_PLAN_FAILED


def test_a_bad_shard_task_definition_is_refused_by_name() -> None:
    with pytest.raises(sm.DefinitionError, match="shard_task_definition_arn"):
        sm.build_definition(**ARGS, shard_task_definition_arn="klippers-shard")
    with pytest.raises(sm.DefinitionError, match="shard_timeout_seconds"):
        sm.build_definition(**ARGS, shard_task_definition_arn=SHARD_TD, shard_timeout_seconds=0)


def test_the_sharded_definition_passes_asl_validator(
    validator: Path, sharded: dict[str, Any], tmp_path: Path
) -> None:
    verdict = validate(validator, sharded, tmp_path)
    assert verdict.valid, verdict.output
