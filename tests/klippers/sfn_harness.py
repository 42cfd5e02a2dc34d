"""Execute the unchanged state machine definition in moto's Step Functions interpreter.

moto's server runs on loopback with S3, EC2, ECS, IAM and Step Functions. The definition
from :func:`klippers.statemachine.build_definition` is created with moto's real ARNs and
executed. Six gaps between moto and AWS are bridged here, nowhere else:

1. Request/response normalisation: moto's ``StateTaskService._normalise_parameters`` and
   ``_normalise_response`` are no-ops (moto issue 10076), so ``ecs:runTask.sync`` and
   ``aws-sdk:s3:getObject`` break. They are re-implemented with botocore's shapes, as
   LocalStack does (PascalCase ASL parameters -> boto member names and back).
2. ECS never runs containers: ``RunTask`` here calls the Python job registered for the
   task definition's family with the task's environment (container definition plus the
   overrides), in the server's request thread, so Map iterations run concurrently.
3. moto reports any STOPPED task as success. Here the job's exit code is the container's:
   ``SystemExit(code)`` gives ``code``, any other exception the code ``python -m
   klippers.parent|child`` would exit with (:func:`klippers.jobs.runner.exit_code`, its
   message logged to the task's stream of the jobs' log group), :class:`NeverStarted` no
   exit code, :class:`SpotInterrupted` its exit code with ECS's Spot stop code and reason.
   A non-zero or missing exit code fails the ``.sync`` wait with
   ``States.TaskFailed`` and the task description as compact JSON in the cause, as on AWS.
4. A retried ``.sync`` task in moto also waits on the task-token endpoint of the attempt
   before, which is already interrupted, so the retry ends in ``States.Timeout`` at once.
   ``runTask.sync`` never uses a task token: the harness waits on the task alone.
5. Retry waits are real ``time.sleep`` calls; they are recorded and skipped.
6. moto keeps LocalStack's old allow-list of ``runTask`` parameters and silently drops
   ``CapacityProviderStrategy`` (Step Functions passes it to ECS: the CDK's
   ``EcsRunTask`` capacity provider options rely on it), so it is added to the list.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from unittest import mock

import boto3
import botocore.session
import requests
from botocore.model import OperationModel
from moto.ecs.models import EC2ContainerServiceBackend
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
    state_task_service_ecs,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from klippers import aws, statemachine
from klippers.contract import EXIT_FAILURE, EXIT_OK
from klippers.jobs import runner

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "klippers-harness-warehouse"
NAMES = aws.StackNames.for_stack("harness")
PARENT_FAMILY = NAMES.parent_family
CHILD_FAMILY = NAMES.child_family
SHARD_FAMILY = NAMES.shard_family

Job = Callable[[Mapping[str, str]], object]
STOPPED_REASON = "Essential container in task exited"
STOP_CODE = "EssentialContainerExited"
SPOT_STOPPED_REASON = "Your Spot Task was interrupted."
SIGTERM_EXIT = 143


# --- 1. botocore shape normalisation ---------------------------------------------------------


@cache
def _operation(service: str, snake_action: str) -> OperationModel:
    model = botocore.session.get_session().get_service_model(service)
    for name in model.operation_names:
        if botocore.xform_name(name) == snake_action:
            return model.operation_model(name)
    raise KeyError(f"{service} has no operation {snake_action}")


def _normalise_parameters(
    self: Any,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    service = self._get_boto_service_name(boto_service_name=boto_service_name)
    action = self._get_boto_service_action(service_action_name=service_action_name)
    shape = _operation(service, action).input_shape
    if shape is not None:
        self._to_boto_request(parameters, shape)


def _normalise_response(
    self: Any,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    service = self._get_boto_service_name(boto_service_name=boto_service_name)
    action = self._get_boto_service_action(service_action_name=service_action_name)
    shape = _operation(service, action).output_shape
    if shape is not None:
        self._from_boto_response(response, shape)


# --- the harness ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRun:
    """One job run: its task definition family, environment, container exit code and where
    ECS placed it (its capacity provider, else its launch type)."""

    family: str
    env: dict[str, str]
    exit_code: int | None
    placement: str

    @property
    def ok(self) -> bool:
        """Whether the job exited with 0."""
        return self.exit_code == EXIT_OK


@dataclass(frozen=True)
class Execution:
    """The end of one execution."""

    arn: str
    status: str
    error: str | None
    cause: str | None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Harness:
    """A moto server on loopback with the pipeline's AWS resources and job hooks."""

    endpoint: str
    jobs: dict[str, Job] = field(default_factory=dict)
    runs: list[JobRun] = field(default_factory=list)
    retry_waits: list[float] = field(default_factory=list)
    max_concurrent: dict[str, int] = field(default_factory=dict)
    state_machine_arn: str = ""
    _running: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Empty every moto backend and forget jobs, runs, waits and concurrency."""
        _configure(self.endpoint, execute=True)
        self.jobs.clear()
        self.runs.clear()
        self.retry_waits.clear()
        self.max_concurrent.clear()
        self._running.clear()
        self.state_machine_arn = ""

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the moto server."""
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)

    # --- setup ---------------------------------------------------------------------------

    def provision(self, *, sharded: bool = False, **definition_args: Any) -> dict[str, Any]:
        """Create bucket, network, cluster, task definitions, log groups and the state
        machine, named as the Pulumi stack ``harness`` names them (``sharded``: with the
        transcription shard task definition, so the execution plans and runs shards)."""
        self.client("s3").create_bucket(Bucket=BUCKET)
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="jobs", Description="jobs", VpcId=vpc)
        ecs = self.client("ecs")
        spot = definition_args.get("child_capacity") == aws.SPOT
        providers = list(aws.CHILD_CAPACITIES.values()) if spot else []
        cluster = ecs.create_cluster(clusterName=NAMES.cluster, capacityProviders=providers)[
            "cluster"
        ]["clusterArn"]
        task_definitions = {
            family: ecs.register_task_definition(
                family=family,
                networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"],
                cpu="1024",
                memory="2048",
                containerDefinitions=[
                    {
                        "name": container,
                        "image": "klippers@sha256:" + "0" * 64,
                        "memory": 2048,
                        "essential": True,
                    }
                ],
            )["taskDefinition"]["taskDefinitionArn"]
            for family, container in (
                (PARENT_FAMILY, aws.PARENT_CONTAINER),
                (CHILD_FAMILY, aws.CHILD_CONTAINER),
                (SHARD_FAMILY, aws.SHARD_CONTAINER),
            )
        }
        if sharded:
            definition_args["shard_task_definition_arn"] = task_definitions[SHARD_FAMILY]
        logs = self.client("logs")
        for log_group in (NAMES.state_machine_log_group, NAMES.jobs_log_group):
            logs.create_log_group(logGroupName=log_group)
        state_machine_logs = (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{NAMES.state_machine_log_group}:*"
        )
        role = self.client("iam").create_role(
            RoleName=NAMES.state_machine_role,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        definition = statemachine.build_definition(
            cluster_arn=cluster,
            parent_task_definition_arn=task_definitions[PARENT_FAMILY],
            child_task_definition_arn=task_definitions[CHILD_FAMILY],
            subnets=[subnet],
            security_groups=[group["GroupId"]],
            bucket=BUCKET,
            **definition_args,
        )
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=NAMES.state_machine,
            definition=json.dumps(definition),
            roleArn=role,
            loggingConfiguration={
                "level": "ALL",
                "includeExecutionData": True,
                "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": state_machine_logs}}],
            },
        )["stateMachineArn"]
        return definition

    # --- running -------------------------------------------------------------------------

    def execute(self, execution_input: dict[str, str], timeout: float = 60) -> Execution:
        """Start an execution and wait for it to end."""
        arn = self.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, input=json.dumps(execution_input)
        )["executionArn"]
        return self.wait(arn, timeout)

    def wait(self, execution_arn: str, timeout: float = 60) -> Execution:
        """Wait for an execution to end."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while (described := sfn.describe_execution(executionArn=execution_arn))[
            "status"
        ] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution still running after {timeout} s")
            time.sleep(0.05)
        return Execution(
            execution_arn, described["status"], described.get("error"), described.get("cause")
        )

    def runs_of(self, family: str) -> list[JobRun]:
        """Job runs of one task definition family, in start order."""
        return [run for run in self.runs if run.family == family]

    def _run_job(self, task: Any, task_definition: Any) -> None:
        family = task_definition.family
        env = {
            e["name"]: e["value"]
            for e in task_definition.container_definitions[0].get("environment") or []
        }
        for override in task.overrides.get("containerOverrides", []):
            env.update({e["name"]: e["value"] for e in override.get("environment", [])})
        with self._lock:
            self._running[family] = self._running.get(family, 0) + 1
            self.max_concurrent[family] = max(
                self.max_concurrent.get(family, 0), self._running[family]
            )
        ended = _run(self.jobs[family], env)
        with self._lock:
            self._running[family] -= 1
            placement = task.capacity_provider_name or task.launch_type
            self.runs.append(JobRun(family, env, ended.exit_code, placement))
        container = task.containers[0]
        container.exitCode = ended.exit_code
        task.stopped_reason = ended.stopped_reason
        task.stop_code = ended.stop_code
        if ended.log_line is not None:
            stream = f"{aws.JOB_STREAM_PREFIXES[container.name]}/{container.name}/{task.id}"
            self._log(stream, ended.log_line)

    def _log(self, stream: str, message: str) -> None:
        """Write ``message`` to the jobs' log group, as ``awslogs`` ships a container's stderr."""
        logs = self.client("logs")
        logs.create_log_stream(logGroupName=NAMES.jobs_log_group, logStreamName=stream)
        logs.put_log_events(
            logGroupName=NAMES.jobs_log_group,
            logStreamName=stream,
            logEvents=[{"timestamp": int(time.time() * 1000), "message": message}],
        )


class NeverStarted(Exception):
    """Raised by a stand-in job: the container never ran (say, its image could not be pulled)."""


class SpotInterrupted(Exception):
    """Raised by a stand-in job: AWS took its Fargate Spot capacity back. The container got
    SIGTERM (exit 143), or ``exit_code`` (None: it never reported one)."""

    def __init__(self, exit_code: int | None = SIGTERM_EXIT) -> None:
        super().__init__(SPOT_STOPPED_REASON)
        self.exit_code = exit_code


@dataclass(frozen=True)
class _Ended:
    exit_code: int | None
    stopped_reason: str
    log_line: str | None
    stop_code: str = STOP_CODE


def _run(job: Job, env: Mapping[str, str]) -> _Ended:
    """Run ``job``: its container's exit code as ``klippers.jobs.runner`` maps a failure,
    ECS's stopped reason, and the error line the job's entry point would log."""
    try:
        job(env)
    except NeverStarted as exc:
        return _Ended(None, f"CannotPullContainerError: {exc}", None, "TaskFailedToStart")
    except SpotInterrupted as exc:
        return _Ended(exc.exit_code, SPOT_STOPPED_REASON, None, statemachine.SPOT_INTERRUPTION)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else EXIT_FAILURE
        return _Ended(code, STOPPED_REASON, None)
    except Exception as exc:
        line = json.dumps({"level": "ERROR", "message": f"job failed: {exc}"})
        return _Ended(runner.exit_code(exc), STOPPED_REASON, line)
    return _Ended(EXIT_OK, STOPPED_REASON, None)


# --- 2 and 3: jobs run by RunTask, failures reach the .sync wait ---------------------------


def _running_tasks(harness: Harness) -> Callable[..., Any]:
    original = EC2ContainerServiceBackend.run_task

    def run_task(backend: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
        tasks = original(backend, *args, **kwargs)
        for task in tasks:
            harness._run_job(task, backend.describe_task_definition(task.task_definition_arn))
        return tasks

    return run_task


def _failing_sync(original: Callable[..., Any]) -> Callable[..., Any]:
    def build_sync_resolver(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        resolve = original(self, env, *args, **kwargs)

        def resolver() -> Any:
            task = resolve()
            if task and any(c.get("ExitCode") != 0 for c in task.get("Containers", [])):
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                cause=json.dumps(task, separators=(",", ":"), default=str),
                                resource="runTask.sync",
                                resourceType="ecs",
                            )
                        ),
                    )
                )
            return task

        return resolver

    return build_sync_resolver


def _sync_without_task_token(original: Callable[..., Any]) -> Callable[..., Any]:
    def eval_sync(self: Any, **kwargs: Any) -> Any:
        return original(self, **{**kwargs, "callback_endpoint": None})

    return eval_sync


@contextmanager
def moto_cloud() -> Iterator[Harness]:
    """Start moto's server on loopback with every patch; stop and undo on exit."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    harness = Harness(endpoint)
    sleeps = types.SimpleNamespace(sleep=harness.retry_waits.append)
    service = state_task_service.StateTaskService
    ecs_service = state_task_service_ecs.StateTaskServiceEcs
    run_task_parameters = state_task_service_ecs._SUPPORTED_API_PARAM_BINDINGS["runtask"]
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # one line per request otherwise
    try:
        with ExitStack() as patches:
            patches.enter_context(
                mock.patch.dict(
                    os.environ,
                    {
                        "MOTO_PORT": str(port),
                        "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing",
                        "AWS_DEFAULT_REGION": REGION,
                    },
                )
            )
            patches.enter_context(
                mock.patch.object(service, "_normalise_parameters", _normalise_parameters)
            )
            patches.enter_context(
                mock.patch.object(service, "_normalise_response", _normalise_response)
            )
            patches.enter_context(
                mock.patch.object(
                    ecs_service,
                    "_build_sync_resolver",
                    _failing_sync(ecs_service._build_sync_resolver),
                )
            )
            patches.enter_context(
                mock.patch.object(
                    ecs_service, "_eval_sync", _sync_without_task_token(ecs_service._eval_sync)
                )
            )
            patches.enter_context(
                mock.patch.object(EC2ContainerServiceBackend, "run_task", _running_tasks(harness))
            )
            patches.enter_context(mock.patch.object(retrier_decl, "time", sleeps))
            patches.enter_context(
                mock.patch.dict(
                    state_task_service_ecs._SUPPORTED_API_PARAM_BINDINGS,
                    {"runtask": run_task_parameters | {"CapacityProviderStrategy"}},
                )
            )
            harness.reset()
            yield harness
    finally:
        _configure(endpoint, execute=False)
        server.stop()
        werkzeug.setLevel(level)


def _configure(endpoint: str, *, execute: bool) -> None:
    """Start from empty backends; let moto execute state machines and stop ECS tasks at
    the first describe (``execute``), or restore moto's defaults."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    if not execute:
        requests.post(
            f"{endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": False}},
            timeout=10,
        ).raise_for_status()
        requests.post(
            f"{endpoint}/moto-api/state-manager/unset-transition",
            json={"model_name": "ecs::task"},
            timeout=10,
        ).raise_for_status()
        return
    requests.post(
        f"{endpoint}/moto-api/config",
        json={"stepfunctions": {"execute_state_machine": True}},
        timeout=10,
    ).raise_for_status()
    requests.post(
        f"{endpoint}/moto-api/state-manager/set-transition",
        json={"model_name": "ecs::task", "transition": {"progression": "immediate"}},
        timeout=10,
    ).raise_for_status()
