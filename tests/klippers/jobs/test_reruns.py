"""Re-runs redo exactly what changed: every warehouse file is compared before and after.

One baseline warehouse (parent and children run once on a 24 s talk) is copied for each
case; the case changes one setting, runs the jobs again and checks which files were
written (modification time or bytes differ), added or removed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import klipmedia
from klipmedia.cut import CutSettings, cut_segment
from klippers import storage as storage_module
from klippers.asr.transcribe import (
    FASTER_WHISPER,
    WHISPER_TIMESTAMPED,
    Progress,
    Transcriber,
)
from klippers.asr.transcript import Transcript
from klippers.contract import (
    EXIT_BAD_INPUT,
    MANIFEST,
    SEGMENTS_DIR,
    SHORTS_DIR,
    THUMBNAIL,
    THUMBNAIL_RECIPE,
    TRANSCRIPT_RECIPE,
    ContractError,
    ShortsConfig,
    VideoRef,
    segment_srt_name,
    segment_video_name,
    segment_words_name,
    short_recipe_name,
    short_video_name,
)
from klippers.jobs import child as child_module
from klippers.jobs import parent as parent_module
from klippers.jobs.child import ChildResult, run_child
from klippers.jobs.parent import ParentResult, run_parent
from klippers.jobs.runner import exit_code
from klippers.selection.llm import LLMConfigError
from klippers.storage import LocalStorage
from tests.klippers.selection.test_llm import FakeChatServer
from tests.support import media
from tests.support.talk import talk_video
from tests.support.whisper_models import ct2_tiny_en_path

pytestmark = pytest.mark.slow

REF = VideoRef("alice", "talk")
ENCODE = klipmedia.EncodeSettings(preset="ultrafast")
BACKGROUND = "background.mp4"
THUMBNAIL_WIDTH = 320
CONFIG = {
    "segment_count": 2,
    "target_short_video_duration_in_seconds": 5,
    "max_duration": 7,
    "background_video": BACKGROUND,
}

Snapshot = dict[str, tuple[int, str]]


def segment_files(n: int) -> set[str]:
    names = (segment_video_name(n), segment_srt_name(n), segment_words_name(n))
    return {f"{SEGMENTS_DIR}/{name}" for name in names}


def short_files(n: int) -> set[str]:
    return {f"{SHORTS_DIR}/{short_video_name(n)}", f"{SHORTS_DIR}/{short_recipe_name(n)}"}


SHORTS = short_files(1) | short_files(2)


@dataclass
class Warehouse:
    """A copy of the baseline warehouse and the jobs that run on it."""

    storage: LocalStorage
    scratch: Path

    def __post_init__(self) -> None:
        self._runs = itertools.count()

    @property
    def folder(self) -> Path:
        return self.storage.root / REF.prefix

    def configure(self, **changes: Any) -> None:
        config = json.loads(self.storage.read_bytes(REF.shorts_config))
        self.storage.write_bytes(REF.shorts_config, json.dumps({**config, **changes}).encode())

    def parent(self) -> ParentResult:
        return run_parent(REF, self.storage, self.workdir())

    def child(self, n: int, encode: klipmedia.EncodeSettings = ENCODE) -> ChildResult:
        return run_child(REF, n, self.storage, self.workdir(), encode=encode)

    def run(self, encode: klipmedia.EncodeSettings = ENCODE) -> tuple[ParentResult, list[bool]]:
        """Both jobs, as the pipeline runs them; whether each short was reused."""
        parent = self.parent()
        reused = [self.child(e["index"], encode).reused for e in parent.segments]
        return parent, reused

    def workdir(self) -> Path:
        return self.scratch / f"work-{next(self._runs)}"

    def snapshot(self) -> Snapshot:
        """Modification time and SHA-256 of every file in the video's folder."""
        return {
            path.relative_to(self.folder).as_posix(): (
                path.stat().st_mtime_ns,
                hashlib.sha256(path.read_bytes()).hexdigest(),
            )
            for path in self.folder.rglob("*")
            if path.is_file()
        }


def written(before: Snapshot, after: Snapshot) -> set[str]:
    """Files written, added or removed between two snapshots."""
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def new_content(before: Snapshot, after: Snapshot, names: set[str]) -> set[str]:
    """Those of ``names`` whose bytes differ (or that appeared)."""
    return {n for n in names if n in after and before.get(n, (0, ""))[1] != after[n][1]}


def shorts_of_new_segments(before: Snapshot, after: Snapshot) -> set[str]:
    """The shorts (and recipes) whose segment video or captions have new bytes."""
    redone = set()
    for n in (1, 2):
        made_from = {f"{SEGMENTS_DIR}/{segment_video_name(n)}"}
        made_from.add(f"{SEGMENTS_DIR}/{segment_words_name(n)}")
        if new_content(before, after, made_from):
            redone |= short_files(n)
    return redone


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline tiny.en model, so nothing reaches a model hub."""
    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))
    monkeypatch.delenv("KLIPPERS_ASR_BACKEND", raising=False)


@pytest.fixture(scope="module")
def media_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rerun-media")


@pytest.fixture(scope="module")
def talk(media_folder: Path) -> Path:
    """The first 24 s of the sample talk (five sentences)."""
    return cut_segment(talk_video(), 0.0, 24.0, media_folder / "talk.mp4").path


@pytest.fixture(scope="module")
def baseline(
    talk: Path,
    media_folder: Path,
    stepped_background: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A finished warehouse: inputs uploaded, then the parent and both children."""
    root = tmp_path_factory.mktemp("baseline")
    storage = LocalStorage(root)
    storage.upload(talk, REF.original_video)
    storage.upload(stepped_background, REF.key(BACKGROUND))
    still = klipmedia.thumbnail(talk, media_folder / THUMBNAIL, width=THUMBNAIL_WIDTH)
    storage.upload(still, REF.thumbnail)
    storage.write_bytes(REF.shorts_config, json.dumps(CONFIG).encode())
    uploaded = (root / REF.thumbnail).stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KLIPPERS_ASR_MODEL", str(ct2_tiny_en_path()))
        parent, reused = Warehouse(storage, tmp_path_factory.mktemp("baseline-work")).run()
    assert parent.segment_count == 2
    assert reused == [False, False]
    # A thumbnail uploaded with the original is taken as made from it, not made again.
    assert (root / REF.thumbnail).stat().st_mtime_ns == uploaded
    assert storage.exists(REF.thumbnail_recipe)
    return root


@pytest.fixture
def warehouse(baseline: Path, tmp_path: Path) -> Warehouse:
    """A copy of the baseline (modification times kept, digest records included)."""
    shutil.copytree(baseline, tmp_path / "warehouse")
    return Warehouse(LocalStorage(tmp_path / "warehouse"), tmp_path)


@dataclass
class Calls:
    """Arguments of every call to a spied function."""

    args: list[tuple[Any, ...]]

    def __len__(self) -> int:
        return len(self.args)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str], Calls]:
    """Record the calls of ``owner.name`` (still calling it)."""

    def install(owner: Any, name: str) -> Calls:
        calls = Calls([])
        real = getattr(owner, name)

        def spied(*args: Any, **kwargs: Any) -> Any:
            calls.args.append(args)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, spied)
        return calls

    return install


# --- nothing changed ---------------------------------------------------------------------------


def test_a_rerun_without_changes_writes_nothing_and_reads_no_original(
    warehouse: Warehouse, spy: Callable[[Any, str], Calls]
) -> None:
    hashed = spy(storage_module, "file_sha256")
    hashed_by_parent = spy(parent_module, "file_sha256")
    downloads = spy(LocalStorage, "download")
    decoded = spy(parent_module, "decode_audio")
    before = warehouse.snapshot()

    parent, reused = warehouse.run()

    assert parent.reused
    assert reused == [True, True]
    assert written(before, warehouse.snapshot()) == set()
    assert len(hashed) == len(hashed_by_parent) == 0, "nothing may be hashed again"
    assert downloads.args == [], "nothing may be copied out of the warehouse"
    assert len(decoded) == 0


# --- settings of the shorts --------------------------------------------------------------------


def _configure(**changes: Any) -> Callable[[Warehouse], None]:
    return lambda warehouse: warehouse.configure(**changes)


def _replace_background(warehouse: Warehouse) -> None:
    other = media.write_video(
        warehouse.scratch / "other-background.mp4",
        media.steps(320, 240, [200, 120]),
        width=320,
        height=240,
        duration=0.2,
    )
    warehouse.storage.upload(other, REF.key(BACKGROUND))


def _unchanged(warehouse: Warehouse) -> None:
    pass


@pytest.mark.parametrize(
    ("change", "encode", "expected"),
    [
        pytest.param(_configure(layout="full"), ENCODE, SHORTS, id="layout"),
        pytest.param(_configure(split=0.6), ENCODE, SHORTS, id="split"),
        pytest.param(_replace_background, ENCODE, SHORTS, id="background"),
        pytest.param(
            _configure(caption_style={"font_size": 64}), ENCODE, SHORTS, id="caption-style"
        ),
        # The manifest carries each segment's reframe mode to its child.
        pytest.param(_configure(reframe="center"), ENCODE, SHORTS | {MANIFEST}, id="reframe"),
        pytest.param(
            _unchanged,
            klipmedia.EncodeSettings(preset="ultrafast", crf=30),
            SHORTS,
            id="encode-settings",
        ),
    ],
)
def test_a_changed_short_setting_renders_every_short_again_and_nothing_else(
    warehouse: Warehouse,
    change: Callable[[Warehouse], None],
    encode: klipmedia.EncodeSettings,
    expected: set[str],
) -> None:
    change(warehouse)
    before = warehouse.snapshot()

    parent, reused = warehouse.run(encode)

    assert parent.reused
    assert reused == [False, False]
    assert written(before, warehouse.snapshot()) == expected


@pytest.mark.parametrize("split", [0.05, 0.95, "half", True])
def test_a_split_the_layout_cannot_draw_is_refused(split: object) -> None:
    with pytest.raises(ContractError, match="split"):
        ShortsConfig(segment_count=1, split=split)  # type: ignore[arg-type]


def test_the_encoder_thread_count_is_not_a_reason_to_render_again(warehouse: Warehouse) -> None:
    before = warehouse.snapshot()
    _, reused = warehouse.run(klipmedia.EncodeSettings(preset="ultrafast", threads=3))
    assert reused == [True, True]
    assert written(before, warehouse.snapshot()) == set()


def test_a_short_whose_recipe_was_not_written_is_rendered_again(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between a short and its recipe: the old recipe must not vouch for it."""
    warehouse.configure(layout="full")

    def crash(*args: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(child_module, "write_recipe", crash)
        with pytest.raises(KeyboardInterrupt):
            warehouse.child(1)
    assert not warehouse.storage.exists(REF.short_recipe(1))
    warehouse.configure(layout="stacked")  # back to what the old recipe described
    before = warehouse.snapshot()

    _, reused = warehouse.run()

    assert reused == [False, True]
    assert written(before, warehouse.snapshot()) == short_files(1)


# --- speech recognition ------------------------------------------------------------------------


def _other_model_path(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    link = warehouse.scratch / "tiny-en"
    link.symlink_to(ct2_tiny_en_path(), target_is_directory=True)
    monkeypatch.setenv("KLIPPERS_ASR_MODEL", str(link))


def _language(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse.configure(language="en")


@pytest.mark.parametrize(
    "change",
    [pytest.param(_other_model_path, id="model"), pytest.param(_language, id="language")],
)
def test_changed_asr_settings_transcribe_again_and_keep_what_comes_out_the_same(
    warehouse: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
    spy: Callable[[Any, str], Calls],
    change: Callable[[Warehouse, pytest.MonkeyPatch], None],
) -> None:
    """Same weights, same words: only the transcript's recipe is new."""
    change(warehouse, monkeypatch)
    loaded = spy(parent_module, "load_transcriber")
    before = warehouse.snapshot()

    parent, reused = warehouse.run()

    assert len(loaded) == 1
    assert parent.reused
    assert reused == [True, True]
    assert written(before, warehouse.snapshot()) == {TRANSCRIPT_RECIPE}


@dataclass(frozen=True)
class Capitals:
    """A stand-in for another backend: it hears the same words and writes them in capitals.

    (whisper-timestamped itself takes minutes here; tests/klippers/asr runs it.)
    """

    heard: Transcriber

    def transcribe(
        self, audio: np.ndarray, language: str | None = None, progress: Progress | None = None
    ) -> Transcript:
        said = self.heard.transcribe(audio, language, progress)
        sentences = tuple(
            replace(
                sentence,
                text=sentence.text.upper(),
                words=tuple(replace(word, text=word.text.upper()) for word in sentence.words),
            )
            for sentence in said.sentences
        )
        return replace(said, sentences=sentences)


def test_another_asr_backend_redoes_what_its_transcript_changed(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = parent_module.load_transcriber

    def load(backend: str, model: str) -> Transcriber:
        if backend == WHISPER_TIMESTAMPED:
            return Capitals(real(FASTER_WHISPER, model))
        return real(backend, model)

    monkeypatch.setattr(parent_module, "load_transcriber", load)
    warehouse.configure(asr_backend=WHISPER_TIMESTAMPED)
    before = warehouse.snapshot()

    parent, reused = warehouse.run()

    after = warehouse.snapshot()
    transcript = {"original.srt", "original.txt", "original.words.json"}
    assert new_content(before, after, transcript) == transcript
    assert not parent.reused
    assert reused == [False] * parent.segment_count
    expected = (
        {TRANSCRIPT_RECIPE, MANIFEST}
        | transcript
        | new_content(before, after, segment_files(1) | segment_files(2))
        | shorts_of_new_segments(before, after)
    )
    assert written(before, after) == expected


# --- the selection request and the original ----------------------------------------------------


def test_fewer_shorts_remove_the_segments_and_shorts_beyond_the_new_count(
    warehouse: Warehouse,
) -> None:
    warehouse.configure(segment_count=1)
    before = warehouse.snapshot()

    parent, reused = warehouse.run()

    after = warehouse.snapshot()
    assert parent.segment_count == 1
    gone = segment_files(2) | short_files(2)
    assert gone.isdisjoint(after)
    changed_segment = new_content(before, after, segment_files(1))
    assert reused == [not changed_segment]
    assert written(before, after) == (
        {MANIFEST} | gone | changed_segment | shorts_of_new_segments(before, after)
    )
    assert json.loads(warehouse.storage.read_bytes(REF.shorts_config))["segment_count"] == 1


def _ranked_by_llm(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A fake model that titles every passage and prefers the later ones."""
    ids = [int(i) for i in re.findall(r"Passage id: (\d+)", body["messages"][1]["content"])]
    segments = [
        {"id": i, "score": 10 + i, "title": f"LLM pick {i}", "reasons": ["the fake model"]}
        for i in ids
    ]
    return 200, {"choices": [{"message": {"content": json.dumps({"segments": segments})}}]}


def test_the_llm_scorer_named_in_the_config_chooses_and_its_model_is_in_the_recipe(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch, spy: Callable[[Any, str], Calls]
) -> None:
    loaded = spy(parent_module, "load_transcriber")
    warehouse.configure(scorer="llm")
    monkeypatch.setenv("KLIPPERS_LLM_MODEL", "local-model")
    with FakeChatServer() as server:
        server.reply = _ranked_by_llm
        monkeypatch.setenv("KLIPPERS_LLM_BASE_URL", server.url)
        parent = warehouse.parent()
    assert len(server.requests) == 1
    assert server.requests[0][1]["model"] == "local-model"
    assert len(loaded) == 0, "a new scorer must not transcribe again"
    assert not parent.reused
    assert all(entry["title"].startswith("LLM pick") for entry in parent.segments)
    manifest = json.loads(warehouse.storage.read_bytes(REF.manifest))
    assert manifest["request"]["scorer"] == {
        "name": "llm",
        "provider": "openai",
        "model": "local-model",
        "fallback": "none",
    }
    # The same settings again: the answer is reused (the server is gone, asking would fail).
    assert warehouse.parent().reused


def test_an_llm_scorer_without_settings_fails_before_any_work(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch, spy: Callable[[Any, str], Calls]
) -> None:
    for name in ("KLIPPERS_LLM_MODEL", "KLIPPERS_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    warehouse.configure(scorer="llm")
    downloads = spy(LocalStorage, "download")
    before = warehouse.snapshot()
    with pytest.raises(LLMConfigError, match="KLIPPERS_LLM_MODEL is not set") as caught:
        warehouse.parent()
    assert exit_code(caught.value) == EXIT_BAD_INPUT
    assert downloads.args == []
    assert written(before, warehouse.snapshot()) == set()


@pytest.fixture(scope="module")
def replacement(talk: Path, media_folder: Path) -> Path:
    """The talk with the same audio (copied packet for packet) and other pictures."""
    settings = CutSettings(smart=False, crf=35)
    return cut_segment(talk, 0.0, 24.0, media_folder / "replaced.mp4", settings=settings).path


def test_a_replaced_original_rebuilds_the_thumbnail_and_everything_cut_from_it(
    warehouse: Warehouse, replacement: Path, spy: Callable[[Any, str], Calls]
) -> None:
    warehouse.storage.upload(replacement, REF.original_video)
    decoded = spy(parent_module, "decode_audio")
    measured = spy(parent_module, "loudness_of_samples")
    before = warehouse.snapshot()

    parent, reused = warehouse.run()

    after = warehouse.snapshot()
    assert not parent.reused
    assert reused == [False, False]
    # Same audio, same words: the transcript files and captions keep their bytes.
    videos = {f"{SEGMENTS_DIR}/{segment_video_name(n)}" for n in (1, 2)}
    assert written(before, after) == (
        {THUMBNAIL, THUMBNAIL_RECIPE, TRANSCRIPT_RECIPE, MANIFEST} | videos | SHORTS
    )
    picture = warehouse.folder / THUMBNAIL
    expected = klipmedia.thumbnail(replacement, warehouse.scratch / "t.png", width=THUMBNAIL_WIDTH)
    assert picture.read_bytes() == expected.read_bytes()
    assert len(decoded) == 1, "the audio is decoded once, for speech and loudness"
    assert len(measured) == 1
