"""Atomic file output: write beside the target, rename into place only on success."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def atomic_path(target: str | os.PathLike[str], marker: str = ".") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is untouched, so
    a crash or an interrupt never leaves a half-written output behind. The temporary
    file is named ``{marker}{target name}.XXXX.partial`` (hidden by default).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f"{marker}{target.name}.", suffix=".partial", dir=target.parent
    )
    os.close(fd)
    temp = Path(name)
    temp.chmod(0o644)  # mkstemp makes 0600; outputs are ordinary readable files
    try:
        yield temp
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    log.debug("wrote %s", target)
