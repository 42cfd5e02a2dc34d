"""Developer tasks. ``nox -s tests`` (default) runs the suite; see ``nox -l`` for the rest."""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "wheel"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
PYPROJECT = nox.project.load_toml("pyproject.toml")
SYSTEM_PACKAGES = {"espeak-ng": "espeak-ng"}  # command -> Debian package


def _install_project(session: nox.Session, extras: str, *groups: str) -> None:
    """Install the project (editable) with ``extras`` and the named dependency groups."""
    session.install("-e", f".[{extras}]")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


def _install_asr_stack(session: nox.Session) -> None:
    """Both ASR backends on CPU: torch's CPU build first, openai-whisper without triton."""
    session.install("torch==2.13.0")
    session.install(
        "numba>=0.58", "tiktoken>=0.7", "more-itertools", "tqdm", "dtw-python>=1.5", "scipy>=1.11"
    )
    session.install("--no-deps", "openai-whisper==20250625", "whisper-timestamped==1.15.9")


def _ensure_commands(session: nox.Session, commands: dict[str, str]) -> None:
    """Install missing system commands with apt-get when we may, else stop with a clear error."""
    missing = [pkg for cmd, pkg in commands.items() if shutil.which(cmd) is None]
    if not missing:
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", *missing, external=True)
        return
    session.error(f"missing system packages: {' '.join(missing)} (install them, e.g. with apt)")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite on real encoded media (pytest options after --)."""
    _ensure_commands(session, SYSTEM_PACKAGES)
    _install_asr_stack(session)
    _install_project(session, "all,infra", "test")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check the media library strictly with mypy."""
    _install_project(session, "all", "typecheck")
    session.run("mypy", "klipmedia", *session.posargs)


@nox.session(python=PYTHON)
def wheel(session: nox.Session) -> None:
    """Build the wheel, install only it (no extras) and render with the bundled font."""
    dist = session.create_tmp()
    session.install("build")
    session.run("python", "-m", "build", "--wheel", "--outdir", dist)
    wheels = [name for name in os.listdir(dist) if name.endswith(".whl")]
    session.install(os.path.join(dist, wheels[0]))
    session.run("python", "tools/smoke_wheel.py", dist)


@nox.session(python=PYTHON, default=False)
def demo(session: nox.Session) -> None:
    """Make a sample talk with real speech and turn it into shorts in demo-output/."""
    _ensure_commands(session, SYSTEM_PACKAGES)
    _install_asr_stack(session)
    _install_project(session, "all", "test")
    session.run("python", "tools/demo.py", "demo-output", *session.posargs)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks (render vs ffmpeg, reframe, ASR, cut, pipeline, selection, length sweep,
    side-by-side renders) -> bench-results/."""
    _ensure_commands(session, {"ffmpeg": "ffmpeg", **SYSTEM_PACKAGES})
    _install_asr_stack(session)
    _install_project(session, "all", "test")
    session.install("scikit-video>=1.1.11")
    for name in ("render", "reframe", "asr", "cut", "pipeline", "selection", "sweep", "workers"):
        session.run("python", f"benchmarks/bench_{name}.py", f"bench-results/{name}.json")


INFRA_DIR = "infra"
_AWS_IDENTITY = (
    "import sys\n"
    "import boto3, botocore.exceptions\n"
    "try:\n"
    "    who = boto3.client('sts').get_caller_identity()\n"
    "except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:\n"
    "    sys.exit(f'no usable AWS credentials ({exc}): run aws configure or aws sso login, '\n"
    "             'or set AWS_PROFILE / AWS_ACCESS_KEY_ID')\n"
    "print(f\"AWS account {who['Account']} as {who['Arn']}\")\n"
)


def _pulumi(session: nox.Session, *args: str) -> None:
    """Run ``pulumi ARGS`` in infra/ once the CLI, its login and AWS credentials are there."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        session.error(
            "the pulumi CLI is not installed (PyPI's `pulumi` is only the SDK): "
            "see https://www.pulumi.com/docs/iac/download-install/"
        )
    login = subprocess.run([pulumi, "whoami"], capture_output=True, text=True, check=False)
    if login.returncode != 0:
        session.error(
            "pulumi is not logged in to a state backend: run `pulumi login` "
            "(or `pulumi login --local`)"
        )
    _install_project(session, "aws,infra")
    session.run("python", "-c", _AWS_IDENTITY, silent=False)
    python = os.path.join(session.bin, "python")
    session.chdir(INFRA_DIR)
    session.run("pulumi", *args, *session.posargs, external=True, env={"PULUMI_PYTHON_CMD": python})


@nox.session(python=PYTHON, default=False)
def preview(session: nox.Session) -> None:
    """Show what `pulumi up` would change (pulumi options after --, e.g. --stack dev)."""
    _pulumi(session, "preview", "--diff")


@nox.session(python=PYTHON, default=False)
def deploy(session: nox.Session) -> None:
    """Create or update a stack (pulumi up; e.g. -- --stack dev --yes to skip the prompt)."""
    _pulumi(session, "up")


@nox.session(python=PYTHON, default=False)
def destroy(session: nox.Session) -> None:
    """Delete the stack's resources (pulumi destroy; it asks first; e.g. -- --stack dev).

    The image repository goes with its images. The warehouse bucket and its objects are
    kept (dropped from the stack) unless the stack was deployed with ``forceDestroy true``.
    """
    _pulumi(session, "destroy")


@nox.session(python=PYTHON, default=False)
def lock(session: nox.Session) -> None:
    """Pin the job image's packages with hashes: images/requirements.lock and images/build.lock.

    For CPython 3.11 on manylinux x86_64 (the image's base) and the extras in the
    Dockerfile's KLIPPERS_EXTRAS; wheels only, but for srt, which has none, built with the
    setuptools of build.lock beside the hatchling that builds klippers. Then pip downloads
    every locked file as the image will, checking hashes and Requires-Python (which uv
    does not fully check: see images/lock-constraints.txt). Options after -- go to
    `uv pip compile` (e.g. --upgrade-package boto3).
    """
    import platform
    import sys

    session.install("uv")
    with open("images/Dockerfile", encoding="utf-8") as dockerfile:
        (extras,) = [
            line.split("=", 1)[1].strip()
            for line in dockerfile
            if line.startswith("ARG KLIPPERS_EXTRAS=")
        ]
    compile_ = ("uv", "pip", "compile", "--generate-hashes", "--python-version", PYTHON)
    target = (
        "--python-platform",
        "x86_64-manylinux_2_28",
        "--custom-compile-command",
        "nox -s lock",
    )
    session.run(
        *compile_,
        *target,
        "pyproject.toml",
        *(f"--extra={extra}" for extra in extras.split(",")),
        "--only-binary=:all:",
        "--no-binary=srt",
        "--constraint=images/lock-constraints.txt",
        "--output-file=images/requirements.lock",
        *session.posargs,
    )
    build_in = os.path.join(session.create_tmp(), "build.in")
    with open(build_in, "w", encoding="utf-8") as requirements:
        requirements.write("\n".join([*PYPROJECT["build-system"]["requires"], "setuptools>=70.1"]))
    session.run(*compile_, *target, build_in, "--output-file=images/build.lock", *session.posargs)
    if sys.platform != "linux" or platform.machine() != "x86_64":
        session.warn("not on linux x86_64: the locks were not downloaded with pip to check them")
        return
    for lock_file in ("images/build.lock", "images/requirements.lock"):
        session.run(
            *("python", "-m", "pip", "download", "--no-deps", "--require-hashes"),
            *("--dest", session.create_tmp(), "-r", lock_file),
        )
