"""The job image installs only hash-pinned packages: the locks and how the Dockerfile uses them.

The transitive check follows the installed packages' own metadata where the installed
version is the locked one (offline: a version not installed here is not looked into).
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[3]
IMAGES = REPO / "images"
LOCKS = {"runtime": IMAGES / "requirements.lock", "build": IMAGES / "build.lock"}
DOCKERFILE = IMAGES / "Dockerfile"
IMAGE_EXTRAS = {"aws", "asr", "reframe", "select"}
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")
# CPython 3.11 on linux x86_64, as the image's base (python:3.11-slim-bookworm).
TARGET = {
    "python_version": "3.11",
    "python_full_version": "3.11.11",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def entries(text: str) -> Iterator[str]:
    """The requirement entries of a lock: continuations joined, comments and options dropped."""
    entry = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry += line.removesuffix("\\") + " "
        if not line.endswith("\\"):
            if not entry.startswith("-"):
                yield " ".join(entry.split())
            entry = ""


def locked(path: Path) -> dict[str, str]:
    """Package name (canonical) -> pinned version."""
    pins: dict[str, str] = {}
    for entry in entries(path.read_text(encoding="utf-8")):
        match = PIN.match(entry)
        assert match, f"{path.name}: not pinned with ==: {entry[:80]}"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def dockerfile_extras() -> set[str]:
    (line,) = [
        line
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("ARG KLIPPERS_EXTRAS=")
    ]
    return set(line.split("=", 1)[1].strip().split(","))


def declared(extras: set[str]) -> list[Requirement]:
    """klippers' own requirements with ``extras`` (``klippers[...]`` self-references expanded)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    pending, done = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in done:
            continue
        done.add(extra)
        for requirement in map(Requirement, project["optional-dependencies"][extra]):
            if canonicalize_name(requirement.name) == "klippers":
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def applies(requirement: Requirement, extras: set[str]) -> bool:
    """Whether ``requirement`` holds on the image's platform, for packages with ``extras``."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**TARGET, "extra": extra}) for extra in extras or {""})


def installed_requirements(name: str, version: str) -> list[Requirement] | None:
    """The requirements of ``name`` ``version`` as installed here; None when not installed."""
    try:
        if importlib.metadata.version(name) != version:
            return None
        return [Requirement(text) for text in importlib.metadata.requires(name) or ()]
    except importlib.metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize("kind", sorted(LOCKS))
def test_every_locked_package_is_pinned_with_hashes(kind: str) -> None:
    text = LOCKS[kind].read_text(encoding="utf-8")
    pins = list(entries(text))
    assert len(pins) >= (30 if kind == "runtime" else 2)
    for entry in pins:
        assert PIN.match(entry), entry[:80]
        assert HASH.search(entry), f"no sha256 hash: {entry[:80]}"
        assert not re.search(r"--hash=(?!sha256:[0-9a-f]{64}(\s|$))", entry), entry[:80]
    assert "nox -s lock" in text.splitlines()[1], "the header names the command that made it"


def test_the_entry_parser_sees_a_missing_pin_or_hash() -> None:
    text = "# c\n--only-binary :all:\n\nfoo==1.0 \\\n    --hash=sha256:" + "a" * 64 + "\nbar>=2\n"
    assert list(entries(text)) == [f"foo==1.0 --hash=sha256:{'a' * 64}", "bar>=2"]
    assert not PIN.match("bar>=2")
    assert not HASH.search("foo==1.0 --hash=md5:abc")


def test_the_image_locks_the_extras_the_jobs_need() -> None:
    assert dockerfile_extras() == IMAGE_EXTRAS  # `select` runs the embedded scorer


def test_the_lock_holds_every_requirement_of_the_image_extras() -> None:
    pins = locked(LOCKS["runtime"])
    pending = [(req, set(req.extras)) for req in declared(dockerfile_extras())]
    followed: set[str] = set()
    problems: list[str] = []
    while pending:
        requirement, _ = pending.pop()
        name = canonicalize_name(requirement.name)
        version = pins.get(name)
        if version is None:
            problems.append(f"{requirement} is not locked")
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement}: the lock pins {version}")
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in followed:
            continue
        followed.add(key)
        for sub in installed_requirements(name, version) or ():
            if applies(sub, set(requirement.extras)):
                pending.append((sub, set(sub.extras)))
    assert problems == []
    assert len(followed) > len(declared(dockerfile_extras())), "nothing transitive was checked"


def test_an_unlocked_requirement_is_seen() -> None:
    pins = locked(LOCKS["runtime"])
    assert "numpy" in pins
    assert not Requirement(f"numpy>{pins['numpy']}").specifier.contains(pins["numpy"])
    assert "left-pad" not in pins
    assert not applies(Requirement('pywin32; sys_platform == "win32"'), set())
    assert applies(Requirement('x; extra == "s3"'), {"s3"})


def _pip_commands() -> list[list[str]]:
    """Each ``pip install`` / ``pip wheel`` of the Dockerfile's RUN lines, as words."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    commands: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("RUN "):
            continue
        words: list[str] = []
        for token in [*shlex.shlex(line[4:], posix=True, punctuation_chars=";&|"), ";"]:
            if token.strip(";&|"):
                words.append(token)
                continue
            if words[:1] == ["pip"] and words[1:2] in (["install"], ["wheel"]):
                commands.append(words)
            words = []
    return commands


def test_the_dockerfile_installs_only_hash_checked_or_local_packages() -> None:
    commands = _pip_commands()
    assert len(commands) >= 3
    for words in commands:
        hashed = "--require-hashes" in words and "--no-deps" in words
        offline = "--no-index" in words
        local = words[-1] == "." and {"--no-deps", "--no-build-isolation"} <= set(words)
        assert hashed or offline or local, " ".join(words)
        if hashed:
            assert "--no-build-isolation" in words or words[1] == "install", " ".join(words)
    locks = {words[words.index("-r") + 1] for words in commands if "-r" in words}
    assert locks == {f"images/{path.name}" for path in LOCKS.values()}
