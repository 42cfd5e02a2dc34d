"""The job image's Dockerfile, parsed: pinned base, non-root user, the jobs' commands."""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from klippers import contract
from klippers.contract import ENV_ASR_MODEL

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "images" / "Dockerfile"
DOCKERIGNORE = REPO / "images" / "Dockerfile.dockerignore"
sys.path.insert(0, str(REPO / "infra"))

from klippers_infra.image import ASR_MODEL_ARG  # noqa: E402

PINNED = re.compile(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions (continuations joined, comments dropped)."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "dangling line continuation"
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for token in shlex.split(ins.args):
                key, _, value = token.partition("=")
                env[key] = value
    return env


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def test_every_base_image_is_pinned_by_digest(instructions: list[Instruction]) -> None:
    bases = [ins.args.split()[0] for ins in instructions if ins.keyword == "FROM"]
    assert len(bases) == 2
    assert all(PINNED.fullmatch(base) for base in bases), bases
    assert not [b for b in bases if ":latest" in b]


def test_the_image_runs_as_a_non_root_user(instructions: list[Instruction]) -> None:
    stage = final_stage(instructions)
    users = [i for i, ins in enumerate(stage) if ins.keyword == "USER"]
    assert users, "no USER in the final stage"
    user = stage[users[-1]].args.split(":")[0]
    assert user not in ("root", "0", "")
    assert not [ins for ins in stage[users[-1] :] if ins.keyword in ("RUN", "COPY", "ADD")]
    assert any(ins.keyword == "RUN" and "useradd" in ins.args and user in ins.args for ins in stage)


def test_default_command_is_the_parent_job_and_no_entrypoint_hides_it(
    instructions: list[Instruction],
) -> None:
    stage = final_stage(instructions)
    (cmd,) = [ins for ins in stage if ins.keyword == "CMD"]
    assert json.loads(cmd.args) == contract.job_command(contract.PARENT_JOB_MODULE)
    assert not [ins for ins in instructions if ins.keyword == "ENTRYPOINT"]
    # The child task definition overrides the command with the same launcher.
    assert contract.job_command(contract.CHILD_JOB_MODULE)[:2] == json.loads(cmd.args)[:2]


def test_asr_model_is_baked_in_through_the_build_argument(
    instructions: list[Instruction],
) -> None:
    stage = final_stage(instructions)
    args = [ins.args.split("=")[0] for ins in stage if ins.keyword == "ARG"]
    assert ASR_MODEL_ARG in args
    env = env_of(stage)
    model_dir = env[ENV_ASR_MODEL]
    assert model_dir.startswith("/")
    # named after the model: the parent's time limit check figures the model by that name
    assert model_dir.endswith(f"/${{{ASR_MODEL_ARG}}}")
    (download,) = [ins for ins in stage if ins.keyword == "RUN" and "download_model" in ins.args]
    assert f"${{{ASR_MODEL_ARG}}}" in download.args
    assert f"${{{ENV_ASR_MODEL}}}" in download.args
    assert env[contract.ENV_LOG_FORMAT] == "json"


def test_the_runtime_has_what_caption_shaping_loads(instructions: list[Instruction]) -> None:
    """Pillow's bundled libraqm shapes Arabic and Devanagari only with the host's libfribidi."""
    stage = final_stage(instructions)
    installs = [ins.args for ins in stage if ins.keyword == "RUN" and "apt-get install" in ins.args]
    assert any("libfribidi0" in args.split() for args in installs)


def test_copied_sources_exist_and_are_not_ignored(instructions: list[Instruction]) -> None:
    sources = [
        part
        for ins in instructions
        if ins.keyword == "COPY" and "--from" not in ins.args
        for part in ins.args.split()[:-1]
    ]
    assert {"pyproject.toml", "klipmedia", "klippers"} <= set(sources)
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    for source in sources:
        assert (REPO / source).exists(), source
        assert source in allowed, f"{source} is excluded by {DOCKERIGNORE.name}"


def test_parser_catches_what_the_checks_rely_on() -> None:
    broken = parse('FROM python:3.11-slim AS a\nRUN echo \\\n  hi\nUSER root\nCMD ["x"]\n')
    assert [i.keyword for i in broken] == ["FROM", "RUN", "USER", "CMD"]
    assert broken[1].args.split() == ["echo", "hi"]
    assert not PINNED.fullmatch(broken[0].args.split()[0])
    with pytest.raises(AssertionError, match="continuation"):
        parse("RUN a \\\n")
