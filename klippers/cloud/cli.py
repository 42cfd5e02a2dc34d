"""``klip cloud``: the same jobs on AWS Step Functions + ECS Fargate.

Thin click commands over the modules of :mod:`klippers.cloud`: bad input exits with 2, any other
failure with 1, each with a one-line message.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from klippers.contract import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    LAYOUTS,
    REFRAMES,
    SCORERS,
    SHARED_BACKGROUNDS,
)

F = TypeVar("F", bound=Callable[..., Any])


def _cloud_errors(func: F) -> F:
    """Turn typed errors into ``error: ...`` on stderr and exit 2 (bad input) or 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from klipmedia.errors import KlipmediaError
        from klippers.aws import TaskSizeError
        from klippers.cloud.clients import CloudError, CloudInputError
        from klippers.contract import ContractError
        from klippers.storage import StorageError

        try:
            return func(*args, **kwargs)
        except (CloudInputError, ContractError, KlipmediaError, TaskSizeError) as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except (CloudError, StorageError) as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


def _env_bucket(func: F) -> F:
    return click.option(
        "--bucket", help="Warehouse bucket (default: env VIDEO_WAREHOUSE_S3_BUCKET_NAME)."
    )(func)


def _region(func: F) -> F:
    return click.option("--region", help="AWS region (default: the AWS profile's / AWS_REGION).")(
        func
    )


def _machine_arn(func: F) -> F:
    func = click.option(
        "--stack",
        help="Pulumi stack whose state machine to use (env KLIPPERS_STACK). "
        "Default: the only stack deployed in this account and region.",
    )(func)
    return click.option(
        "--state-machine-arn",
        help="State machine ARN (stack output stateMachineArn; env KLIPPERS_STATE_MACHINE_ARN); "
        "wins over --stack.",
    )(func)


def _video_options(func: F) -> F:
    func = click.option("--video", help="Video ID (default: env VIDEO_ID).")(func)
    return click.option("--user", help="User ID (default: env USER_ID).")(func)


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@click.group()
def cloud() -> None:
    """Run the same jobs on AWS Step Functions + ECS Fargate."""


@cloud.command()
def definition() -> None:
    """Print the state machine definition (ASL JSON) with placeholder ARNs."""
    from klippers.statemachine import definition_json

    click.echo(definition_json(), nl=False)


def _caption_style(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> dict[str, Any] | None:
    """``--caption-style``: a JSON object, inline or ``@FILE``."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {value[1:]}: {exc}") from exc
    try:
        style = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})") from exc
    if not isinstance(style, dict):
        raise click.BadParameter(f"must be a JSON object (got {type(style).__name__})")
    return style


def _background(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | str | None:
    """``--background``: ``backgrounds/NAME`` (shared library key, as text) or a local file."""
    if value is None or value.startswith(f"{SHARED_BACKGROUNDS}/"):
        return value
    path = Path(value)
    if not path.is_file():
        raise click.BadParameter(
            f"{value}: no such file (a shared background is named {SHARED_BACKGROUNDS}/NAME)"
        )
    return path


@cloud.command()
@click.argument("video_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--user", required=True, help="User ID (folder in the warehouse).")
@click.option("--video", help="Video ID (default: a slug of the file name).")
@click.option(
    "--shorts",
    type=click.IntRange(min=0),
    help="Shorts to make (0: let the parent choose). Default: as stored, else 5.",
)
@click.option(
    "--duration",
    type=float,
    help="Target length of each short, seconds. Default: as stored, else 60.",
)
@click.option("--layout", type=click.Choice(LAYOUTS), help="Default: as stored, else stacked.")
@click.option(
    "--reframe",
    type=click.Choice(REFRAMES),
    help="Frame whoever speaks, the most prominent face, or centre. "
    "Default: as stored, else speaker.",
)
@click.option(
    "--scorer",
    type=click.Choice(SCORERS),
    help="Who rates the candidate moments: embedded (offline) or llm (the stack's "
    "KLIPPERS_LLM_* settings). Default: as stored, else embedded.",
)
@click.option(
    "--background",
    callback=_background,
    metavar="FILE|backgrounds/NAME",
    help="Background video under the speaker: a local file, uploaded into the video's folder "
    "as background.mp4, or a video in the bucket's shared backgrounds/ folder.",
)
@click.option(
    "--caption-style",
    callback=_caption_style,
    metavar="JSON|@FILE",
    help="Caption style as a JSON object (e.g. '{\"font_size\": 96}'), or @FILE holding one; "
    "replaces the stored style.",
)
@click.option(
    "--language", help="Spoken language code (e.g. en). Default: as stored, else detected."
)
@_env_bucket
@_region
@_cloud_errors
def upload(
    video_file: Path,
    user: str,
    video: str | None,
    shorts: int | None,
    duration: float | None,
    layout: str | None,
    reframe: str | None,
    scorer: str | None,
    background: Path | str | None,
    caption_style: dict[str, Any] | None,
    language: str | None,
    bucket: str | None,
    region: str | None,
) -> None:
    """Upload VIDEO_FILE with a thumbnail and its shorts_config.json.

    A shorts_config.json already in the video's folder is kept and updated: the options
    given here replace its fields, every other field stays. Nothing is written unless the
    result is valid; an original or background already holding the same bytes is not
    sent again, and the config is written last.
    """
    from klippers.cloud.clients import Clients, bucket_name, video_ref
    from klippers.cloud.warehouse import ConfigChanges, slug
    from klippers.cloud.warehouse import upload as store_inputs

    changes = ConfigChanges(
        shorts=shorts,
        short_seconds=duration,
        layout=layout,
        reframe=reframe,
        scorer=scorer,
        caption_style=caption_style,
        language=language,
        background=background,
    )
    ref = video_ref(user, video or slug(video_file.name), {})
    storage = Clients.connect(region).warehouse(bucket_name(bucket, os.environ))
    with _progress(video_file) as progress:
        done = store_inputs(storage, video_file, ref, changes, progress=progress)
    click.echo(f"uploaded {video_file} ({done.duration_seconds:.1f} s)")
    for key in done.keys:
        note = " (already there, not sent again)" if key in done.unchanged else ""
        click.echo(f"  {storage.describe(key)}{note}")
    how = "updated the stored config" if done.merged else "new config"
    click.echo(f"{how}: {json.dumps(done.config.to_dict(), ensure_ascii=False)}")
    click.echo(f"next: klip cloud run --user {ref.user_id} --video {ref.video_id}")


@contextmanager
def _progress(path: Path) -> Iterator[Callable[[int], None] | None]:
    if not path.is_file() or not sys.stderr.isatty():
        yield None
        return
    lock = threading.Lock()
    with click.progressbar(length=path.stat().st_size, label="upload", file=sys.stderr) as bar:

        def advance(count: int) -> None:
            with lock:
                bar.update(count)

        yield advance


@cloud.command()
@_video_options
@click.option("--bucket", help="Warehouse bucket (default: the one the state machine reads).")
@_machine_arn
@_region
@_cloud_errors
def run(
    user: str | None,
    video: str | None,
    bucket: str | None,
    state_machine_arn: str | None,
    stack: str | None,
    region: str | None,
) -> None:
    """Start processing an uploaded video (refused while it is already running).

    After a failed run, a new run renders only what is missing: the parent keeps current
    segments and each child skips a short that is already current.
    """
    from klippers.cloud.clients import Clients, video_ref
    from klippers.cloud.executions import find_state_machine, run_bucket, start_run

    ref = video_ref(user, video, os.environ)
    clients = Clients.connect(region)
    machine = find_state_machine(clients.sfn, state_machine_arn, os.environ, stack)
    storage = clients.warehouse(run_bucket(machine, bucket, os.environ))
    started = start_run(clients.sfn, storage, machine, ref)
    follow = f"--user {ref.user_id} --video {ref.video_id}"
    click.echo(f"started {started.name}")
    click.echo(f"  {started.execution_arn}")
    click.echo("follow it with:")
    click.echo(f"  klip cloud status {follow}")
    click.echo(f"  klip cloud logs {follow} --follow")


def _target(
    region: str | None,
    state_machine_arn: str | None,
    stack: str | None,
    execution: str | None,
    user: str | None,
    video: str | None,
) -> tuple[Any, Any, str]:
    """Clients, the state machine and the execution ARN a command acts on."""
    from klippers.cloud.clients import Clients, video_ref
    from klippers.cloud.executions import find_state_machine, resolve_execution

    clients = Clients.connect(region)
    machine = find_state_machine(clients.sfn, state_machine_arn, os.environ, stack)
    ref = None if execution else video_ref(user, video, os.environ)
    return clients, machine, resolve_execution(clients.sfn, machine, execution, ref)


_EXECUTION = click.argument("execution", required=False)


_JOBS_LOG_GROUP = click.option(
    "--jobs-log-group", help="Fargate jobs' log group (default: the stack's, output jobsLogGroup)."
)


@cloud.command()
@_EXECUTION
@_video_options
@click.option(
    "--log-lines",
    type=click.IntRange(min=0, max=100),
    default=10,
    show_default=True,
    help="Last log lines shown for each failed job.",
)
@_JOBS_LOG_GROUP
@_machine_arn
@_region
@_cloud_errors
def status(
    execution: str | None,
    user: str | None,
    video: str | None,
    log_lines: int,
    jobs_log_group: str | None,
    state_machine_arn: str | None,
    stack: str | None,
    region: str | None,
) -> None:
    """Show an execution (ARN or name; default: the video's latest run).

    A failed one shows why: the failing state, each failed job's segment, exit code, ECS
    stopped reason and last log lines.
    """
    from klippers.cloud.executions import execution_status, run_bucket

    clients, machine, arn = _target(region, state_machine_arn, stack, execution, user, video)
    storage = clients.warehouse(run_bucket(machine, None, os.environ))
    found = execution_status(clients.sfn, storage, arn)
    current = ", ".join(
        f"{name} x{count}" if count > 1 else name for name, count in found.current_states
    )
    expected = f" of {found.shorts_expected}" if found.shorts_expected else ""
    rows = [
        ("execution", found.name),
        ("video", f"{found.ref.user_id}/{found.ref.video_id}"),
        ("status", found.status),
        ("started", _when(found.started)),
        ("stopped", _when(found.stopped)),
        ("current", current or "-"),
        ("shorts", f"{len(found.shorts)}{expected} in {storage.describe()}{found.ref.prefix}"),
    ]
    if found.error or found.cause:
        rows += [("error", found.error or "-"), ("cause", found.reason or "-")]
    for label, value in rows:
        click.echo(f"{label:<10} {value}")
    group = jobs_log_group or (machine.names.jobs_log_group if machine.names else None)
    for failure in found.job_failures:
        if not failure.recovered or found.status == "RUNNING":
            _echo_failure(failure, clients.logs, group, log_lines)


def _echo_failure(failure: Any, logs: Any, group: str | None, log_lines: int) -> None:
    """A failed job: what happened, ECS's stopped reason, the task and its last log lines."""
    from klippers.cloud.logs import last_lines

    click.echo(f"{'failed':<10} {failure.describe()}")
    if failure.stopped_reason:
        click.echo(f"{'  stopped':<10} {failure.stopped_reason}")
    if failure.task_arn:
        click.echo(f"{'  task':<10} {failure.task_arn}")
    if group and failure.log_stream and log_lines:
        for line in last_lines(logs, group, failure.log_stream, log_lines):
            click.echo(f"{'  log':<10} {line.rstrip()}")


@cloud.command(name="list")
@click.option("--user", help="Only this user's executions.")
@click.option("--video", help="Only this video's (needs --user).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@_machine_arn
@_region
@_cloud_errors
def list_(
    user: str | None,
    video: str | None,
    limit: int,
    state_machine_arn: str | None,
    stack: str | None,
    region: str | None,
) -> None:
    """List recent executions, newest first."""
    from klippers.cloud.clients import Clients
    from klippers.cloud.executions import find_state_machine, list_runs

    clients = Clients.connect(region)
    machine = find_state_machine(clients.sfn, state_machine_arn, os.environ, stack)
    runs = list_runs(clients.sfn, machine.arn, user=user, video=video, limit=limit)
    if not runs:
        click.echo("no executions")
        return
    width = max(len(r.name) for r in runs)
    click.echo(f"{'NAME':<{width}}  {'STATUS':<9}  {'STARTED':<19}  STOPPED")
    for r in runs:
        click.echo(f"{r.name:<{width}}  {r.status:<9}  {_when(r.started):<19}  {_when(r.stopped)}")


@cloud.command()
@_EXECUTION
@_video_options
@click.option("-f", "--follow", is_flag=True, help="Keep polling until the execution ends.")
@click.option("--poll", type=click.FloatRange(min=1), default=5.0, show_default=True)
@_JOBS_LOG_GROUP
@_machine_arn
@_region
@_cloud_errors
def logs(
    execution: str | None,
    user: str | None,
    video: str | None,
    follow: bool,
    poll: float,
    jobs_log_group: str | None,
    state_machine_arn: str | None,
    stack: str | None,
    region: str | None,
) -> None:
    """Print the state machine's and the Fargate tasks' log lines of an execution."""
    from klippers.cloud.clients import CloudInputError
    from klippers.cloud.logs import log_lines

    clients, machine, arn = _target(region, state_machine_arn, stack, execution, user, video)
    names = machine.names
    jobs_group = jobs_log_group or (names.jobs_log_group if names else None)
    machine_group = machine.log_group or (names.state_machine_log_group if names else None)
    if jobs_group is None:
        raise CloudInputError(f"{machine.name} is not named after a stack: pass --jobs-log-group")
    for line in log_lines(
        clients.sfn,
        clients.logs,
        arn,
        state_machine_group=machine_group,
        jobs_group=jobs_group,
        follow=follow,
        poll_seconds=poll,
    ):
        click.echo(f"{_when(line.time)} {line.source} {line.message.rstrip()}")


@cloud.command()
@_EXECUTION
@_video_options
@_machine_arn
@_region
@_cloud_errors
def stop(
    execution: str | None,
    user: str | None,
    video: str | None,
    state_machine_arn: str | None,
    stack: str | None,
    region: str | None,
) -> None:
    """Stop a running execution (ARN or name; default: the video's latest run)."""
    from klippers.cloud.executions import stop_run

    clients, _, arn = _target(region, state_machine_arn, stack, execution, user, video)
    click.echo(f"{arn}: {stop_run(clients.sfn, arn)}")


@cloud.command()
@_video_options
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the shorts, the manifest and the segment SRTs.",
)
@_env_bucket
@_region
@_cloud_errors
def download(
    user: str | None, video: str | None, output: Path, bucket: str | None, region: str | None
) -> None:
    """Download a video's shorts, manifest and segment captions."""
    from klippers.cloud.clients import Clients, bucket_name, video_ref
    from klippers.cloud.warehouse import download as fetch_shorts

    ref = video_ref(user, video, os.environ)
    storage = Clients.connect(region).warehouse(bucket_name(bucket, os.environ))
    got = fetch_shorts(storage, ref, output)
    for path in got.written:
        click.echo(f"downloaded {path}")
    for path in got.already_current:
        click.echo(f"up to date {path}")


@cloud.command()
@click.option("--hours", type=float, required=True, help="Length of the video, hours.")
@click.option("--shorts", type=click.IntRange(min=0), default=5, show_default=True)
@click.option("--duration", type=float, default=60.0, show_default=True, help="Seconds per short.")
@click.option("--parent-vcpu", type=float, help="Parent task vCPU (default: recommended).")
@click.option("--parent-memory", type=float, help="Parent task memory, GB.")
@click.option("--child-vcpu", type=float, help="Child task vCPU (default: recommended).")
@click.option("--child-memory", type=float, help="Child task memory, GB.")
@click.option("--max-concurrency", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--asr-model", default="base", show_default=True)
@_cloud_errors
def estimate(
    hours: float,
    shorts: int,
    duration: float,
    parent_vcpu: float | None,
    parent_memory: float | None,
    child_vcpu: float | None,
    child_memory: float | None,
    max_concurrency: int,
    asr_model: str,
) -> None:
    """Model the wall time and dollars of one video (see the README's cost model)."""
    from klippers.cloud import cost

    common: dict[str, Any] = {
        "hours": hours,
        "shorts": shorts,
        "short_seconds": duration,
        "max_concurrency": max_concurrency,
        "asr_model": asr_model,
    }
    best = cost.recommend(**common)
    parent = _size(parent_vcpu, parent_memory, cost.PARENT_MEMORY_NEED_GB, best.parent)
    child = _size(child_vcpu, child_memory, cost.CHILD_MEMORY_NEED_GB, best.child)
    chosen = cost.estimate(**common, parent=parent, child=child)
    seed = cost.estimate(**common, parent=cost.SEED_SIZE, child=cost.SEED_SIZE)
    click.echo(f"{hours:g} h video, {shorts} shorts of {duration:g} s, ASR {asr_model}")
    click.echo(f"{'STAGE':<22} {'TASK':<7} {'CPU s':>8} {'WALL s':>8}")
    for stage in chosen.stages:
        click.echo(
            f"{stage.name:<22} {stage.task:<7} {stage.cpu_seconds:>8.1f} {stage.wall_seconds:>8.1f}"
        )
    click.echo(
        f"children run in {chosen.waves} wave(s) of up to {max_concurrency}; "
        f"{chosen.state_transitions} state transitions"
    )
    click.echo(f"{'':<26} {'PARENT':<14} {'CHILD':<14} {'MINUTES':>8} {'DOLLARS':>8}")
    for label, e in (("this estimate", chosen), ("recommended", best), ("seed sizes", seed)):
        click.echo(
            f"{label:<26} {_fmt(e.parent):<14} {_fmt(e.child):<14} "
            f"{e.wall_minutes:>8.1f} {e.total_dollars:>8.3f}"
        )
    click.echo(
        f"{'seed pipeline (reported)':<26} {_fmt(cost.SEED_SIZE):<14} "
        f"{_fmt(cost.SEED_SIZE):<14} {cost.SEED_MINUTES * hours:>8.1f} "
        f"{cost.SEED_DOLLARS * hours:>8.3f}"
    )
    verdict = "meets" if chosen.meets_targets else "MISSES"
    click.echo(
        f"target <= {chosen.target_minutes:.1f} min and <= ${chosen.target_dollars:.2f}: {verdict}"
    )
    click.echo(
        f"stack config: parentCpu {best.parent.cpu_units} parentMemory {best.parent.memory_mib} "
        f"childCpu {best.child.cpu_units} childMemory {best.child.memory_mib} (recommended)"
    )
    click.echo(
        f"Fargate vCPU in use at once: up to {chosen.peak_vcpu:g} per running video "
        f"(service quota '{cost.FARGATE_VCPU_QUOTA}')"
    )
    click.echo(
        f"children: ${chosen.child_dollars:.3f} on demand, ${chosen.child_spot_dollars:.3f} on "
        f"Fargate Spot (stack config childCapacity spot, {cost.FARGATE_SPOT_DISCOUNT:.0%} off "
        "vCPU and memory, before interruptions)"
    )
    _echo_sharding(common, chosen)
    for note in chosen.notes:
        click.echo(f"note: {note}")
    click.echo(f"prices: us-east-1 Fargate Linux/x86 on demand, taken {cost.PRICES_TAKEN}")


def _echo_sharding(common: dict[str, Any], single: Any) -> None:
    """Single-pass against sharded transcription (plan + shard tasks, then the parent)."""
    from klippers.aws import SHARD_SIZE
    from klippers.cloud import cost
    from klippers.jobs.windows import shard_count_for
    from klippers.workload import ASR_MEASURED_CORES

    hours = common["hours"]
    planned = shard_count_for(hours * 3600)
    fastest = cost.best_shards(**common, child=single.child)
    rows: list[tuple[str, Any]] = [("single pass", single)]
    if planned > 1:
        rows.append(
            (
                f"sharded, plan: {planned}",
                cost.estimate(**common, child=single.child, shards=planned),
            )
        )
    rows.append((f"sharded, fastest: {fastest.shards}", fastest))
    click.echo(f"{'TRANSCRIPTION':<26} {'WINDOWS':>7} {'MINUTES':>8} {'DOLLARS':>8}")
    for label, e in rows:
        click.echo(f"{label:<26} {e.shards:>7} {e.wall_minutes:>8.1f} {e.total_dollars:>8.3f}")
    best = min((single, fastest), key=lambda e: (round(e.wall_seconds, 1), e.total_dollars))
    switch = "shardTranscription true" if best.shards > 1 else "shardTranscription off"
    click.echo(
        f"recommended for {hours:g} h: {best.shards} window(s), stack config {switch} "
        f"(shards: {SHARD_SIZE.vcpu:g} vCPU/{SHARD_SIZE.memory_gb:g} GB, ASR at the "
        f"speed measured on {ASR_MEASURED_CORES} cores; each shard starts a task and "
        "downloads the original)"
    )


def _size(vcpu: float | None, memory: float | None, need: float, default: Any) -> Any:
    from klippers import aws

    if vcpu is None:
        if memory is not None:
            return aws.TaskSize(default.vcpu, memory)
        return default
    return aws.TaskSize(vcpu, memory) if memory is not None else aws.smallest_size(vcpu, need)


def _fmt(size: Any) -> str:
    return f"{size.vcpu:g} vCPU/{size.memory_gb:g} GB"
