"""The ``klip`` command line: thin wrappers that turn errors into exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from klippers.cloud.cli import cloud
from klippers.contract import EXIT_FAILURE, LAYOUTS, MAX_SPLIT, MIN_SPLIT, REFRAMES, SCORERS

F = TypeVar("F", bound=Callable[..., Any])


def _friendly_errors(func: F) -> F:
    """Turn the libraries' typed errors into a readable message and a non-zero exit.

    Bad input exits 2, a failure worth retrying 75, anything else expected 1; an
    unexpected error keeps its traceback.
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from klipmedia.errors import KlipmediaError
        from klippers.asr.transcribe import TranscriptionError
        from klippers.jobs.runner import exit_code
        from klippers.selection.llm import LLMError
        from klippers.storage import StorageError

        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (
            KlipmediaError,
            ValueError,
            OSError,
            StorageError,
            TranscriptionError,
            LLMError,
        ) as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exit_code(exc))

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs.")
def cli(verbose: bool) -> None:
    """Klippers: turn a long landscape video into vertical shorts."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Console-script entry point."""
    cli()


@cli.command()
@click.argument("segment", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the vertical short (.mp4).",
)
@click.option(
    "--srt",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Captions as an SRT file.",
)
@click.option(
    "--words",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Word-timed captions (words JSON); highlights the spoken word.",
)
@click.option(
    "--background",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Background video for the stacked layout (looped, muted).",
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    default="stacked",
    show_default=True,
    help="auto: split in two when two people share the clip and both speak, else stacked.",
)
@click.option(
    "--split",
    type=click.FloatRange(MIN_SPLIT, MAX_SPLIT),
    default=0.5,
    show_default=True,
    help="Share of the height the speaker takes in the stacked layout.",
)
@click.option(
    "--reframe",
    type=click.Choice(REFRAMES),
    default="speaker",
    show_default=True,
    help="Frame whoever speaks (cuts on speaker change), the most prominent face, or centre.",
)
@click.option("--preset", default="veryfast", show_default=True, help="x264 preset.")
@click.option(
    "--crf",
    type=click.IntRange(0, 51),
    default=23,
    show_default=True,
    help="x264 constant rate factor (lower is better quality).",
)
@_friendly_errors
def render(
    segment: Path,
    output: Path,
    srt: Path | None,
    words: Path | None,
    background: Path | None,
    layout: str,
    split: float,
    reframe: str,
    preset: str,
    crf: int,
) -> None:
    """Render SEGMENT as a 1080x1920 short with captions."""
    import klipmedia

    if srt and words:
        raise click.UsageError("give either --srt or --words, not both")
    captions: klipmedia.Captions | None = None
    if srt:
        captions = klipmedia.Captions.from_srt(srt)
    elif words:
        captions = klipmedia.Captions.from_words_json(words)
    single = klipmedia.Layout(kind="stacked" if layout == "auto" else layout, split=split)  # type: ignore[arg-type]
    framing = klipmedia.plan_reframe(
        segment,
        mode=reframe,  # type: ignore[arg-type]
        layout="auto" if layout == "auto" else single,
        fallback=single,
    )
    result = klipmedia.render_short(
        segment,
        output,
        background=background,
        captions=captions,
        layout=framing.layout,
        crop_path=framing.crop_path,
        content=framing.content,
        encode=klipmedia.EncodeSettings(preset=preset, crf=crf),
    )
    click.echo(f"wrote {result.path} ({result.frames} frames, {result.duration:.2f} s)")


@cli.command()
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for original.srt, original.txt, original.words.json.",
)
@click.option(
    "--backend",
    type=click.Choice(["faster-whisper", "whisper-timestamped"]),
    envvar="KLIPPERS_ASR_BACKEND",
    show_envvar=True,
    help="Speech recogniser  [default: faster-whisper].",
)
@click.option(
    "--model",
    envvar="KLIPPERS_ASR_MODEL",
    show_envvar=True,
    help="Model name (tiny.en, base, small...) or local path  [default: base].",
)
@click.option("--language", help="Spoken language code (e.g. en); detected when omitted.")
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    envvar="KLIPPERS_ASR_DEVICE",
    show_envvar=True,
    help="Run the model on the CPU (int8) or a CUDA GPU (float16)  [default: cpu].",
)
@click.option(
    "--asr-workers",
    type=click.IntRange(min=0),
    envvar="KLIPPERS_ASR_WORKERS",
    show_envvar=True,
    help="Windows transcribed at once (faster-whisper); 0: one per core.",
)
@_friendly_errors
def transcribe(
    video: Path,
    outdir: Path,
    backend: str | None,
    model: str | None,
    language: str | None,
    device: str | None,
    asr_workers: int | None,
) -> None:
    """Transcribe VIDEO with word timestamps into subtitles, text and words JSON."""
    from klippers.asr.subtitles import write_transcript_files
    from klippers.asr.transcribe import BackendUnavailableError, ModelLoadError, transcribe_file

    # Bad input media are ValueError/FileNotFoundError: _friendly_errors reports those.
    try:
        transcript = transcribe_file(
            video,
            backend=backend,
            model=model,
            language=language,
            device=device,
            workers=asr_workers,
        )
    except (BackendUnavailableError, ModelLoadError) as exc:
        raise click.ClickException(str(exc)) from exc
    paths = write_transcript_files(transcript, outdir)
    click.echo(
        f"wrote {paths['srt']}, {paths['text']}, {paths['words']} "
        f"({len(transcript.words)} words, language {transcript.language})"
    )


@cli.command()
@click.argument("words", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--count",
    type=click.IntRange(0, 50),
    default=0,
    show_default=True,
    help="Number of segments (0 chooses automatically).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="Target segment duration in seconds.",
)
@click.option("--min-duration", type=click.FloatRange(min=0.5), help="Shortest segment (s).")
@click.option("--max-duration", type=click.FloatRange(min=0.5), help="Longest segment (s).")
@click.option(
    "--scorer",
    type=click.Choice(SCORERS),
    help="Who rates the candidate moments: embedded (offline, the default) or llm "
    "(an OpenAI-compatible endpoint or Bedrock, from the KLIPPERS_LLM_* variables).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_friendly_errors
def highlights(
    words: Path,
    count: int,
    duration: float,
    min_duration: float | None,
    max_duration: float | None,
    scorer: str | None,
    as_json: bool,
) -> None:
    """Rank the best self-contained segments of a words JSON transcript."""
    import json

    from klippers.asr.transcript import Transcript
    from klippers.selection.config import scorer_from_config
    from klippers.selection.highlights import select_highlights

    result = select_highlights(
        Transcript.load(words),
        count=count,
        target_duration=duration,
        min_duration=min_duration,
        max_duration=max_duration,
        scorer=scorer_from_config(scorer),
    )
    if as_json:
        document = {
            "segments": [h.to_dict() for h in result.highlights],
            "message": result.message,
        }
        click.echo(json.dumps(document, ensure_ascii=False, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Highlights of {words.name}")
    for column in ("#", "start", "end", "s", "score", "title", "reasons"):
        table.add_column(column, overflow="fold")
    for h in result.highlights:
        table.add_row(
            str(h.rank),
            f"{h.start:.2f}",
            f"{h.end:.2f}",
            f"{h.duration:.1f}",
            f"{h.score:.1f}",
            h.title,
            "; ".join(h.reasons),
        )
    console = Console()
    console.print(table)
    if result.message:
        console.print(f"[yellow]{result.message}[/yellow]")


class _RichEvents:
    """Progress bars for ``klip run``: one for the stages, one per short."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.stage_task = progress.add_task("starting", total=None)
        self.shorts: dict[int, Any] = {}

    def stage(self, name: str) -> None:
        self.progress.update(self.stage_task, description=f"[bold]{name}", completed=0, total=None)

    def stage_progress(self, done: float, total: float) -> None:
        self.progress.update(self.stage_task, completed=done, total=total)

    def shorts_planned(self, count: int) -> None:
        for n in range(1, count + 1):
            self.shorts[n] = self.progress.add_task(f"short {n}", total=None)

    def short_progress(self, segment: int, done: int, total: int) -> None:
        self.progress.update(self.shorts[segment], completed=done, total=total)

    def short_finished(self, segment: int, reused: bool) -> None:
        label = f"short {segment} (already done)" if reused else f"short {segment}"
        self.progress.update(self.shorts[segment], description=label, completed=1, total=1)

    def short_retrying(self, segment: int, error: str, delay: float) -> None:
        self.progress.console.print(
            f"[yellow]short {segment} failed ({error}); retrying in {delay:.0f} s"
        )


@cli.command()
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--shorts", type=click.IntRange(0, 50), help="How many shorts (0: choose).")
@click.option("--duration", type=click.FloatRange(5, 180), help="Target length of a short (s).")
@click.option(
    "--background",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Background video under the speaker (looped, muted).",
)
@click.option("--layout", type=click.Choice(LAYOUTS), help="Default: stacked.")
@click.option(
    "--reframe",
    type=click.Choice(REFRAMES),
    help="Frame whoever speaks (default), the most prominent face, or centre.",
)
@click.option(
    "--scorer",
    type=click.Choice(SCORERS),
    help="Who rates the candidate moments: embedded (offline, the default) or llm "
    "(an OpenAI-compatible endpoint or Bedrock, from the KLIPPERS_LLM_* variables).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("klippers-output"),
    show_default=True,
    help="Local warehouse folder (same layout as the S3 bucket).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Shorts rendered in parallel (default: one per core, as free memory allows at "
    "about 450 MB per render).",
)
@click.option("--user", default="local", show_default=True, help="Warehouse user id.")
@click.option("--video-id", help="Warehouse video id (default: from the file name).")
@click.option(
    "--model",
    envvar="KLIPPERS_ASR_MODEL",
    show_envvar=True,
    help="Speech model name or local path.",
)
@_friendly_errors
def run(
    video: Path,
    shorts: int | None,
    duration: float | None,
    background: Path | None,
    layout: str | None,
    reframe: str | None,
    scorer: str | None,
    out: Path,
    workers: int | None,
    user: str,
    video_id: str | None,
    model: str | None,
) -> None:
    """Turn VIDEO into vertical shorts on this machine (re-running resumes)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from klippers.local import RunOptions, run_local

    options = RunOptions(
        shorts=shorts,
        duration=duration,
        background=background,
        layout=layout,
        reframe=reframe,
        scorer=scorer,
        workers=workers,
        user=user,
        video_id=video_id,
        asr_model=model,
    )
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        result = run_local(video, out, options, _RichEvents(progress))
    _print_shorts(result)
    if result.failed:
        for n, error in sorted(result.failed.items()):
            click.secho(f"short {n} failed: {error}", fg="red", err=True)
        sys.exit(EXIT_FAILURE)


def _print_shorts(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from klippers.contract import short_video_name

    table = Table(title=f"{len(result.manifest['segments'])} shorts")
    for column in ("rank", "score", "title", "duration", "path"):
        table.add_column(column)
    for entry in result.manifest["segments"]:
        path = result.folder / "videos-cropped-stacked" / short_video_name(entry["index"])
        table.add_row(
            str(entry["index"]),
            f"{entry['score']:.0f}",
            entry["title"],
            f"{entry['duration']:.0f} s",
            str(path),
        )
    console = Console()
    console.print(table)
    if result.manifest.get("message"):
        console.print(f"[yellow]{result.manifest['message']}")
    console.print(f"gallery: {result.gallery}")


cli.add_command(cloud)
