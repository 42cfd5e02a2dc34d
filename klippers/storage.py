"""One interface over the warehouse: a local folder (the default) or an S3 bucket.

Keys are relative POSIX strings (``klippers_warehouse/alice/talk-1/original.mp4``); a key
that could leave the storage root (``..``, absolute, backslashes, control characters) is
refused with :class:`StorageError` before anything is touched.

Writes are atomic. Locally a temp file is written beside the target and moved into place
with :func:`os.replace`; on S3 an object appears only when complete (a single ``PutObject``,
or a multipart upload that is aborted on failure and invisible until completed). Every
upload records the SHA-256 of its content, so a re-run can ask :meth:`Storage.is_current`
and skip outputs that are already present and current, and :meth:`Storage.fingerprint`
answers without reading the content again: S3 from the object's metadata, a local folder
from a digest it recorded when the file had the same size and modification time.

``boto3`` is imported on first use of :class:`S3Storage` (``pip install 'klippers[aws]'``).
Transient S3 failures are retried by botocore's own retry policy (``standard`` mode).

Under least privilege a role may list the bucket only below a prefix (``s3:ListBucket``
with an ``s3:prefix`` condition), and then S3 answers a ``HeadObject`` or ``GetObject`` of
a missing key with 403, not 404. So :meth:`S3Storage.exists` (and ``fingerprint``,
``is_current``, :func:`read_if_exists`) ask by listing with the key as prefix, a 403 on a
read is told apart from a missing key the same way, and :class:`StoragePermissionError`
names the key and the permission that is missing.

Examples
--------
>>> import tempfile
>>> store = open_storage(tempfile.mkdtemp())
>>> store.write_bytes("klippers_warehouse/alice/talk-1/shorts_config.json", b"{}")
>>> store.list("klippers_warehouse/alice/")
['klippers_warehouse/alice/talk-1/shorts_config.json']
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any, NoReturn, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from klipmedia.io import atomic_path
from klippers.aws import bucket_name_problem
from klippers.contract import ENV_BUCKET

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
SHA256_METADATA = "sha256"
"""S3 user-metadata field (``x-amz-meta-sha256``) holding the hex digest of the content."""

_TEMP_MARKER = ".klippers-tmp-"
_DIGESTS_DIR = ".klippers-digests"
"""Folder under a local root holding a digest record per file (never listed, not a key)."""
_COPY_CHUNK = 1 * MiB
_MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "AllAccessDisabled",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
    }
)

Progress = Callable[[int], None]
"""Reports the bytes moved since the last call, for progress bars only. S3 calls it from
worker threads, and with a negative count when a part is sent again after a retry."""


class StorageError(Exception):
    """A storage operation failed, or a key or location is invalid."""


class StorageKeyNotFoundError(StorageError, FileNotFoundError):
    """The key holds no object (or file)."""

    def __init__(self, key: str, where: str = "") -> None:
        super().__init__(f"{where or key}: no such key")
        self.key = key


class StoragePermissionError(StorageError, PermissionError):
    """The storage refused access (credentials, bucket policy, file permissions)."""


class StorageUnavailableError(StorageError):
    """The storage could not be reached or kept failing after retries; trying later may help."""


@dataclass(frozen=True)
class Fingerprint:
    """What is stored at a key: its size and, when recorded, the SHA-256 of its content."""

    size: int
    sha256: str | None


@runtime_checkable
class Storage(Protocol):
    """Keyed blob storage; every write is atomic and every key is checked first."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        ...

    def download(self, key: str, dest: Path, progress: Progress | None = None) -> Path:
        """Copy ``key`` to ``dest`` atomically and return ``dest``.

        Raises :class:`StorageKeyNotFoundError` when nothing is stored at ``key``.
        """
        ...

    def upload(self, src: Path, key: str, progress: Progress | None = None) -> None:
        """Store the file ``src`` at ``key``; the object appears only once complete."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """The content stored at ``key``."""
        ...

    def write_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` atomically."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys starting with ``prefix`` (plain string prefix, as S3 does)."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        ...

    def fingerprint(self, key: str) -> Fingerprint | None:
        """Size and recorded SHA-256 of ``key``, or None when nothing is stored there."""
        ...

    def is_current(self, key: str, src: Path) -> bool:
        """Whether ``key`` already holds exactly the content of the local file ``src``."""
        ...

    def local_file(self, key: str) -> Path | None:
        """The file holding ``key``, to read in place without a copy; None when the storage
        is not a local folder (then :meth:`download` it)."""
        ...

    def describe(self, key: str = "") -> str:
        """A location for messages: the storage root, or where ``key`` lives."""
        ...


# --- keys -------------------------------------------------------------------------------------


def check_key(key: str, *, prefix: bool = False) -> str:
    """Return ``key`` unchanged if it is a safe relative POSIX key, else raise StorageError.

    With ``prefix=True`` the empty string and a trailing ``/`` are allowed (for listing).
    """
    if not isinstance(key, str):
        raise StorageError(f"storage key must be a string, got {type(key).__name__}")
    if not key:
        if prefix:
            return key
        raise StorageError("storage key is empty")
    problem = _key_problem(key, prefix=prefix)
    if problem:
        raise StorageError(f"invalid storage key {key!r}: {problem}")
    return key


def _key_problem(key: str, *, prefix: bool) -> str | None:
    if _CONTROL.search(key):
        return "contains a control character"
    if "\\" in key:
        return "contains a backslash"
    if key.startswith("/"):
        return "must be relative (starts with '/')"
    if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        return f"longer than {_MAX_KEY_BYTES} bytes"
    parts = key.split("/")
    if prefix and key.endswith("/"):
        parts = parts[:-1]
    for part in parts:
        if part in ("", ".", ".."):
            return f"has an empty, '.' or '..' path segment ({part!r})"
        if part.startswith(_TEMP_MARKER):
            return f"segment {part!r} uses the reserved temp-file marker"
        if part == _DIGESTS_DIR:
            return f"segment {part!r} is reserved for digest records"
    return None


# --- hashing ----------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_COPY_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(found: Fingerprint | None, src: Path) -> bool:
    """Whether ``found`` describes the same content as ``src`` (unknown digests never match)."""
    if found is None or found.sha256 is None:
        return False
    if found.size != src.stat().st_size:
        return False
    return found.sha256 == file_sha256(src)


def _source_file(src: Path) -> Path:
    if not src.is_file():
        raise StorageError(f"{src}: upload source is not a file")
    return src


def content_fingerprint(storage: Storage, key: str, copy: Path) -> Fingerprint | None:
    """Size and SHA-256 of ``key``; None when absent.

    The recorded digest when there is one; otherwise (an S3 object written by another
    tool) the object is downloaded to ``copy`` and hashed there.
    """
    found = storage.fingerprint(key)
    if found is None or found.sha256 is not None:
        return found
    storage.download(key, copy)
    return Fingerprint(size=copy.stat().st_size, sha256=file_sha256(copy))


def read_if_exists(storage: Storage, key: str) -> bytes | None:
    """The content of ``key``, or None when nothing is stored there.

    Asks :meth:`Storage.exists` first, so a missing key is never read (on S3 that read
    would need ``s3:ListBucket`` without a prefix condition to answer 404 rather than 403).
    """
    if not storage.exists(key):
        return None
    try:
        return storage.read_bytes(key)
    except StorageKeyNotFoundError:  # removed in between
        return None


def _stat_id(path: Path) -> tuple[int, int]:
    """Size and modification time (ns): what changes when a file is rewritten."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@dataclass(frozen=True)
class _Record:
    """A local file's digest, valid while its size and mtime are ``size`` and ``mtime_ns``.

    ``source`` is the size and mtime of the outside file last found (or uploaded)
    identical, so :meth:`LocalStorage.is_current` need not hash it again.
    """

    size: int
    mtime_ns: int
    sha256: str
    source: tuple[int, int] | None = None

    @classmethod
    def parse(cls, data: bytes) -> _Record | None:
        try:
            doc = json.loads(data)
            source = doc.get("source")
            return cls(
                int(doc["size"]),
                int(doc["mtime_ns"]),
                str(doc["sha256"]),
                (int(source[0]), int(source[1])) if source else None,
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return None


# --- local folder -----------------------------------------------------------------------------


class LocalStorage:
    """Keys are files under ``root``; writes go to a temp file beside the target first.

    Temp files carry a reserved marker in their name, are never listed, and a key may not
    use the marker, so an interrupted write never shows up as an object. The SHA-256 of
    every file written or hashed is recorded under ``.klippers-digests/`` with the file's
    size and mtime; while those match, the file is not hashed again.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def describe(self, key: str = "") -> str:
        """The root folder, or the path of ``key`` inside it."""
        return str(self._path(key)) if key else str(self.root)

    def exists(self, key: str) -> bool:
        """Whether a file is stored at ``key``."""
        return self._path(key).is_file()

    def local_file(self, key: str) -> Path:
        """The file at ``key`` (raises :class:`StorageKeyNotFoundError` when there is none).

        Writes replace a file by renaming a new one over it, so an open file keeps its content.
        """
        return self._existing(key)

    def download(self, key: str, dest: Path, progress: Progress | None = None) -> Path:
        """Copy ``key`` to ``dest`` atomically and return ``dest``."""
        path = self._existing(key)
        with self._errors(key), path.open("rb") as fh:
            _write_atomic(Path(dest), fh, progress)
        logger.debug("copied %s to %s", path, dest)
        return Path(dest)

    def upload(self, src: Path, key: str, progress: Progress | None = None) -> None:
        """Copy ``src`` to ``key`` atomically (temp file in the target folder, then rename)."""
        target = self._path(key)
        source = _source_file(Path(src))
        digest = hashlib.sha256()
        with self._errors(key):
            seen = _stat_id(source)
            with source.open("rb") as fh:
                written = _write_atomic(target, fh, progress, digest)
            self._remember(key, _Record(*written, digest.hexdigest(), source=seen))
        logger.debug("stored %s at %s", source, target)

    def read_bytes(self, key: str) -> bytes:
        """The content of ``key``."""
        path = self._existing(key)
        with self._errors(key):
            return path.read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` atomically."""
        target = self._path(key)
        with self._errors(key):
            written = _write_atomic_bytes(target, data)
            self._remember(key, _Record(*written, hashlib.sha256(data).hexdigest()))

    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys of the files whose key starts with ``prefix``."""
        check_key(prefix, prefix=True)
        folder = prefix.rpartition("/")[0]
        start = self._path(folder) if folder else self.root
        if not start.is_dir():
            return []
        keys: list[str] = []
        with self._errors(prefix):
            for dirpath, dirnames, filenames in os.walk(start):
                dirnames[:] = [
                    d for d in dirnames if not d.startswith(_TEMP_MARKER) and d != _DIGESTS_DIR
                ]
                base = Path(dirpath).relative_to(self.root).as_posix()
                for name in filenames:
                    key = name if base == "." else f"{base}/{name}"
                    if key.startswith(prefix) and not name.startswith(_TEMP_MARKER):
                        keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        """Remove the file at ``key`` if there is one."""
        path = self._path(key)
        with self._errors(key):
            path.unlink(missing_ok=True)
            self._record_path(key).unlink(missing_ok=True)

    def fingerprint(self, key: str) -> Fingerprint | None:
        """Size and SHA-256 of the file at ``key`` (the recorded digest while the file's size
        and mtime are unchanged, else hashed now), or None when absent."""
        path = self._path(key)
        if not path.is_file():
            return None
        with self._errors(key):
            record = self._record_of(key, path)
        return Fingerprint(size=record.size, sha256=record.sha256)

    def is_current(self, key: str, src: Path) -> bool:
        """Whether ``key`` holds exactly the content of ``src``.

        Sizes first; then a ``src`` with the size and mtime of the file last found
        identical is current without reading it; any other is compared by SHA-256.
        """
        path = self._path(key)
        source = _source_file(Path(src))
        if not path.is_file():
            return False
        with self._errors(key):
            seen = _stat_id(source)
            if path.stat().st_size != seen[0]:
                return False
            record = self._record_of(key, path)
            if record.source == seen:
                return True
            if record.sha256 != file_sha256(source):
                return False
            self._remember(key, replace(record, source=seen))
        return True

    def _record_of(self, key: str, path: Path) -> _Record:
        """The digest record of the file at ``key``, hashing it when none is valid."""
        size, mtime_ns = _stat_id(path)
        try:
            record = _Record.parse(self._record_path(key).read_bytes())
        except FileNotFoundError:
            record = None
        if record is not None and (record.size, record.mtime_ns) == (size, mtime_ns):
            return record
        fresh = _Record(size, mtime_ns, file_sha256(path))
        self._remember(key, fresh)
        return fresh

    def _remember(self, key: str, record: _Record) -> None:
        """Record a digest; failing to is not an error (the file is hashed next time)."""
        try:
            _write_atomic_bytes(self._record_path(key), json.dumps(asdict(record)).encode())
        except OSError as exc:
            logger.warning("cannot record the digest of %s: %s", self.root / key, exc)

    def _record_path(self, key: str) -> Path:
        return self.root.joinpath(_DIGESTS_DIR, *f"{key}.json".split("/"))

    def _path(self, key: str) -> Path:
        check_key(key)
        path = self.root.joinpath(*key.split("/"))
        if not path.resolve().is_relative_to(self.root):
            raise StorageError(f"invalid storage key {key!r}: resolves outside {self.root}")
        return path

    def _existing(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise StorageKeyNotFoundError(key, str(path))
        return path

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Turn OS errors into storage errors that name the key's path."""
        try:
            yield
        except StorageError:
            raise
        except FileNotFoundError as exc:
            raise StorageKeyNotFoundError(key, str(self.root / key)) from exc
        except PermissionError as exc:
            raise StoragePermissionError(f"{self.root / key}: permission denied") from exc
        except OSError as exc:
            raise StorageError(f"{self.root / key}: {exc.strerror or exc}") from exc


def _temp_beside(target: Path) -> AbstractContextManager[Path]:
    """A temp path in ``target``'s folder, moved onto ``target`` only if the block succeeds."""
    return atomic_path(target, marker=_TEMP_MARKER)


def _write_atomic(
    target: Path,
    source: IO[bytes],
    progress: Progress | None,
    digest: hashlib._Hash | None = None,
) -> tuple[int, int]:
    """Copy ``source`` to ``target`` (feeding ``digest``); the size and mtime written."""
    with _temp_beside(target) as temp:
        with temp.open("wb") as fh:
            for chunk in iter(lambda: source.read(_COPY_CHUNK), b""):
                fh.write(chunk)
                if digest is not None:
                    digest.update(chunk)
                if progress is not None:
                    progress(len(chunk))
            _sync(fh)
        return _stat_id(temp)  # a rename keeps both


def _write_atomic_bytes(target: Path, data: bytes) -> tuple[int, int]:
    """Write ``data`` to ``target``; the size and mtime written."""
    with _temp_beside(target) as temp:
        with temp.open("wb") as fh:
            fh.write(data)
            _sync(fh)
        return _stat_id(temp)


def _sync(fh: IO[bytes]) -> None:
    """Flush ``fh`` to disk so the rename never publishes a file with missing content."""
    fh.flush()
    os.fsync(fh.fileno())


# --- S3 ---------------------------------------------------------------------------------------


class S3Storage:
    """Keys are objects under ``prefix`` in ``bucket``.

    Parameters
    ----------
    bucket
        Bucket name.
    prefix
        Key prefix inside the bucket (a folder; a trailing ``/`` is added).
    endpoint_url
        S3 endpoint (e.g. a local S3 server). When None, boto3 reads ``AWS_ENDPOINT_URL_S3``
        / ``AWS_ENDPOINT_URL`` from the environment, else uses AWS.
    client
        An S3 client to use as is (``endpoint_url`` and ``max_attempts`` are then unused).
    max_attempts
        Total attempts per request under botocore's ``standard`` retry mode.
    multipart_threshold, multipart_chunksize
        Files at least ``multipart_threshold`` bytes go up as multipart uploads in parts of
        ``multipart_chunksize`` bytes (S3's minimum part size is 5 MiB).
    max_concurrency
        Parallel part transfers per upload or download.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        client: Any = None,
        *,
        max_attempts: int = 8,
        multipart_threshold: int = 16 * MiB,
        multipart_chunksize: int = 16 * MiB,
        max_concurrency: int = 4,
    ) -> None:
        if (problem := bucket_name_problem(bucket)) is not None:
            raise StorageError(problem)
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.client = client if client is not None else _s3_client(endpoint_url, max_attempts)
        self._transfer = _transfer_config(multipart_threshold, multipart_chunksize, max_concurrency)

    def __repr__(self) -> str:
        return f"S3Storage({self.describe()!r})"

    def describe(self, key: str = "") -> str:
        """``s3://bucket/prefix/`` or the URL of ``key``."""
        return self._url(check_key(key) if key else "")

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``.

        One ``ListObjectsV2`` with the key as prefix (``s3:ListBucket``), not a
        ``HeadObject``: that would answer 403 for a missing key under a prefix-scoped
        ``s3:ListBucket``.
        """
        full = self._key(key)
        with self._errors(key, "s3:ListBucket"):
            return self._listed(full)

    def local_file(self, key: str) -> None:
        """None: objects are downloaded, never read in place."""
        check_key(key)
        return None

    def download(self, key: str, dest: Path, progress: Progress | None = None) -> Path:
        """Fetch ``key`` with boto3's managed transfer into a temp file, then rename."""
        full = self._key(key)
        target = Path(dest)
        with self._errors(key, "s3:GetObject", read=True), _temp_beside(target) as temp:
            self.client.download_file(
                self.bucket, full, str(temp), Callback=progress, Config=self._transfer
            )
        logger.debug("downloaded %s to %s", self.describe(key), target)
        return target

    def upload(self, src: Path, key: str, progress: Progress | None = None) -> None:
        """Upload ``src`` with boto3's managed transfer (multipart above the threshold).

        The object, with the content's SHA-256 in its metadata, appears only when the
        transfer completes; a failed multipart upload is aborted.
        """
        full = self._key(key)
        source = _source_file(Path(src))
        metadata = {SHA256_METADATA: file_sha256(source)}
        with self._errors(key, "s3:PutObject"):
            self.client.upload_file(
                str(source),
                self.bucket,
                full,
                ExtraArgs={"Metadata": metadata},
                Callback=progress,
                Config=self._transfer,
            )
        logger.debug("uploaded %s to %s", source, self.describe(key))

    def read_bytes(self, key: str) -> bytes:
        """The content of ``key`` (one ``GetObject``)."""
        full = self._key(key)
        with self._errors(key, "s3:GetObject", read=True):
            response = self.client.get_object(Bucket=self.bucket, Key=full)
            body = response["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
            return data

    def write_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` (one ``PutObject``, atomic on S3)."""
        full = self._key(key)
        metadata = {SHA256_METADATA: hashlib.sha256(data).hexdigest()}
        with self._errors(key, "s3:PutObject"):
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data, Metadata=metadata)

    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys under ``prefix`` (paginated ``ListObjectsV2``)."""
        check_key(prefix, prefix=True)
        paginator = self.client.get_paginator("list_objects_v2")
        keys: list[str] = []
        with self._errors(prefix, "s3:ListBucket"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                keys.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", ()))
        return sorted(keys)

    def delete(self, key: str) -> None:
        """Remove ``key`` (S3 treats a missing key as deleted)."""
        full = self._key(key)
        with self._errors(key, "s3:DeleteObject"):
            self.client.delete_object(Bucket=self.bucket, Key=full)

    def fingerprint(self, key: str) -> Fingerprint | None:
        """Size and the SHA-256 recorded at upload (None if another tool wrote the object);
        None when absent (asked by :meth:`exists` first, then one ``HeadObject``)."""
        head = self._head(key) if self.exists(key) else None
        if head is None:
            return None
        sha = head.get("Metadata", {}).get(SHA256_METADATA)
        return Fingerprint(size=int(head["ContentLength"]), sha256=sha)

    def is_current(self, key: str, src: Path) -> bool:
        """Whether ``key`` holds the content of ``src`` according to its recorded SHA-256."""
        return _matches(self.fingerprint(key), _source_file(Path(src)))

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _head(self, key: str) -> dict[str, Any] | None:
        full = self._key(key)
        try:
            with self._errors(key, "s3:GetObject", read=True):
                head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=full)
                return head
        except StorageKeyNotFoundError:
            return None

    def _listed(self, full: str) -> bool:
        """Whether the bucket key ``full`` is listed (the first key with it as prefix)."""
        found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=full, MaxKeys=1)
        return any(item["Key"] == full for item in found.get("Contents", ()))

    def _visible(self, key: str) -> bool | None:
        """Whether listing shows ``key``; None when the listing fails too."""
        try:
            return self._listed(self._key(key))
        except Exception:  # any failure means "cannot tell"
            return None

    def _arn(self, key: str | None = None) -> str:
        """The ARN of the bucket, or of ``key`` in it (what an IAM policy names)."""
        region = getattr(getattr(self.client, "meta", None), "region_name", None) or ""
        partition = next((p for r, p in _PARTITIONS if region.startswith(r)), "aws")
        bucket = f"arn:{partition}:s3:::{self.bucket}"
        return bucket if key is None else f"{bucket}/{self._key(key)}"

    @contextmanager
    def _errors(self, key: str, action: str, *, read: bool = False) -> Iterator[None]:
        """Turn botocore and transfer errors into storage errors that name the object and,
        when access is denied, the permission ``action`` that is missing.

        A denied ``read`` of a key that listing does not show is a missing key: S3 answers
        403 rather than 404 to a caller without ``s3:ListBucket`` on it.
        """
        import boto3.exceptions  # type: ignore[import-untyped]
        import botocore.exceptions  # type: ignore[import-untyped]

        try:
            yield
        except StorageError:
            raise
        except botocore.exceptions.ClientError as exc:
            self._raise(exc, key, action, read)
        except boto3.exceptions.S3UploadFailedError as exc:
            # boto3 wraps the ClientError without ``from``; the cause is the context.
            cause = exc.__context__
            if isinstance(cause, botocore.exceptions.ClientError):
                self._raise(cause, key, action, read)
            raise StorageError(f"{self._url(key)}: {exc}") from exc
        except (botocore.exceptions.BotoCoreError, ConnectionError) as exc:
            raise StorageUnavailableError(f"{self._url(key)}: {exc}") from exc

    def _raise(self, exc: Any, key: str, action: str, read: bool) -> NoReturn:
        where = self._url(key)
        needed = None
        if _is_denied(exc) and _error_code(exc) in _PLAIN_DENIALS:
            listing = f"{self._arn()} for s3:prefix {self.prefix + key!r}"
            resource = listing if action == "s3:ListBucket" else self._arn(key)
            if read:
                visible = self._visible(key)
                if visible is False:
                    raise StorageKeyNotFoundError(key, where) from exc
                if visible is None:
                    resource += f", or it is missing (telling needs s3:ListBucket on {listing})"
            needed = (action, resource)
        _raise_client_error(exc, key, where, self.bucket, needed)


_PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-iso-", "aws-iso"))
_PLAIN_DENIALS = frozenset({"403", "AccessDenied", "Forbidden"})
_KMS_ACTION = re.compile(r"\bkms:[A-Za-z]+")


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_denied(exc: Any) -> bool:
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return _error_code(exc) in _DENIED_CODES or status == 403


def _raise_client_error(
    exc: Any, key: str, where: str, bucket: str, needed: tuple[str, str] | None = None
) -> NoReturn:
    """Raise the storage error for ``exc``; ``needed`` is the (action, resource) a denial
    is about, for the message."""
    error = exc.response.get("Error", {})
    code = _error_code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in _NOT_FOUND_CODES:
        raise StorageKeyNotFoundError(key, where) from exc
    if code == "NoSuchBucket":
        raise StorageError(f"{where}: bucket {bucket!r} does not exist") from exc
    if code in _DENIED_CODES or status == 403:
        raise StoragePermissionError(_denied_message(where, code, error, needed)) from exc
    if status >= 500 or code in {"SlowDown", "Throttling", "RequestTimeout"}:
        raise StorageUnavailableError(f"{where}: {code} after retries") from exc
    raise StorageError(f"{where}: {code or status}: {error.get('Message', exc)}") from exc


def _denied_message(
    where: str, code: str, error: Mapping[str, Any], needed: tuple[str, str] | None
) -> str:
    """Which permission is missing: the one S3 names (a KMS key's, say), else ``needed``."""
    detail = str(error.get("Message") or "")
    kms = _KMS_ACTION.search(detail)
    if kms is not None:
        missing = f"needs {kms.group(0)} on the bucket's KMS key ({detail})"
    elif needed is not None:
        missing = f"needs {needed[0]} on {needed[1]}"
    else:
        missing = "the credentials were refused"
    advice = "check the credentials and the bucket policy"
    return f"{where}: access denied ({code}): {missing}; {advice}"


def _s3_client(endpoint_url: str | None, max_attempts: int) -> Any:
    try:
        import boto3
        from botocore.config import Config  # type: ignore[import-untyped]
    except ImportError as exc:
        raise StorageError("S3 storage needs boto3: pip install 'klippers[aws]'") from exc
    config = Config(retries={"total_max_attempts": max_attempts, "mode": "standard"})
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def _transfer_config(threshold: int, chunksize: int, concurrency: int) -> Any:
    from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]

    if chunksize < 5 * MiB:
        raise StorageError(f"multipart chunk size {chunksize} is below S3's 5 MiB minimum")
    return TransferConfig(
        multipart_threshold=threshold,
        multipart_chunksize=chunksize,
        max_concurrency=concurrency,
    )


# --- opening ----------------------------------------------------------------------------------


def open_storage(location: str | Path | None, environ: Mapping[str, str] | None = None) -> Storage:
    """Open the storage named by ``location``.

    ``s3://bucket[/prefix]`` opens S3, ``file:///path`` or a plain path opens a local folder,
    and None opens the S3 bucket named by ``VIDEO_WAREHOUSE_S3_BUCKET_NAME`` in ``environ``
    (default :data:`os.environ`).

    Examples
    --------
    >>> open_storage("s3://warehouse/test-run").describe()  # doctest: +SKIP
    's3://warehouse/test-run/'
    """
    if location is None:
        env = os.environ if environ is None else environ
        bucket = env.get(ENV_BUCKET, "").strip()
        if not bucket:
            raise StorageError(
                f"no storage location given and {ENV_BUCKET} is not set "
                "(set it to a bucket name, or pass an s3:// URL or a folder)"
            )
        return S3Storage(bucket)
    if isinstance(location, Path):
        return LocalStorage(location)
    if not location.strip():
        raise StorageError("storage location is empty")
    parts = urlsplit(location)
    if parts.scheme == "s3":
        if parts.query or parts.fragment:
            raise StorageError(f"{location}: an s3:// URL takes no query or fragment")
        return S3Storage(parts.netloc, unquote(parts.path))
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"{location}: file:// URLs must name a local path")
        return LocalStorage(Path(unquote(parts.path)))
    if "://" in location:
        raise StorageError(f"{location}: unsupported storage URL (use s3://, file:// or a path)")
    return LocalStorage(Path(location))
