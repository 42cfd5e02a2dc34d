"""Developer tasks: ``nox -s tests`` (default), ``lint``, ``typecheck``, ``bench``, ``demo``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
PYPROJECT = nox.project.load_toml("pyproject.toml")


def _install_project(session: nox.Session, extras: str, *groups: str) -> None:
    """Install the project with ``extras`` and the named dependency groups."""
    session.install("-e", f".[{extras}]")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite on real encoded media (pass pytest options after --)."""
    _install_project(session, "all", "test")
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
