"""Storage: the same behaviour from a local folder and from S3 on a loopback moto server."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from klippers import storage as storage_module
from klippers.contract import ENV_BUCKET
from klippers.storage import (
    Fingerprint,
    LocalStorage,
    MiB,
    S3Storage,
    Storage,
    StorageError,
    StorageKeyNotFoundError,
    StoragePermissionError,
    StorageUnavailableError,
    content_fingerprint,
    open_storage,
)
from tests.conftest import REGION

boto3 = pytest.importorskip("boto3")

PART = 5 * MiB
KEY = "klippers_warehouse/alice/talk-1/original.mp4"
_bucket_numbers = itertools.count()


class Interrupted(Exception):
    """Raised from a progress callback to cut a transfer short."""


CUT_AFTER = 128 * 1024


def _pump(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
    """Copy bytes until either side closes, or close both once ``limit`` bytes went by."""
    moved = 0
    try:
        while data := source.recv(65536):
            moved += len(data)
            if limit is not None and moved > limit:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture(scope="session")
def cutting_endpoint(s3_endpoint: str) -> Iterator[str]:
    """A loopback proxy to the S3 endpoint that drops every connection (each retry too)
    once it has carried ``CUT_AFTER`` request bytes: a network failure mid-upload."""
    upstream = urlsplit(s3_endpoint)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection((upstream.hostname, upstream.port))
            for args in ((client, server, CUT_AFTER), (server, client, None)):
                threading.Thread(target=_pump, args=args, daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    listener.close()
    thread.join(timeout=5)


@pytest.fixture
def s3(aws_env: None, s3_endpoint: str) -> Any:
    """A raw boto3 client on the loopback endpoint, to inspect what the storage did."""
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"klippers-storage-test-{os.getpid()}-{next(_bucket_numbers)}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each behaviour test runs on a local folder and on S3 (under a key prefix)."""
    if request.param == "local":
        return LocalStorage(tmp_path / "warehouse")
    endpoint = request.getfixturevalue("s3_endpoint")
    return S3Storage(
        request.getfixturevalue("bucket"),
        prefix="runs/42",
        endpoint_url=endpoint,
        multipart_threshold=PART,
        multipart_chunksize=PART,
    )


def _file(path: Path, size: int, seed: int = 0) -> Path:
    """A file of ``size`` pseudo-random bytes (different for each seed)."""
    block = hashlib.sha256(f"seed{seed}".encode()).digest() * 2048  # 64 KiB
    data = (block * (size // len(block) + 1))[:size]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _raise_after(limit: int) -> Callable[[int], None]:
    """A progress callback that interrupts the transfer once ``limit`` bytes have moved."""
    moved = 0

    def progress(count: int) -> None:
        nonlocal moved
        moved += count
        if moved >= limit:
            raise Interrupted(f"interrupted after {moved} bytes")

    return progress


# --- round trip ------------------------------------------------------------------------------


def test_round_trip(store: Storage, tmp_path: Path) -> None:
    src = _file(tmp_path / "src" / "original.mp4", 300_000)
    assert not store.exists(KEY)
    store.upload(src, KEY)
    assert store.exists(KEY)
    dest = store.download(KEY, tmp_path / "out" / "nested" / "copy.mp4")
    assert dest.read_bytes() == src.read_bytes()
    assert store.read_bytes(KEY) == src.read_bytes()

    config = "klippers_warehouse/alice/talk-1/shorts_config.json"
    store.write_bytes(config, b'{"segment_count": 2}')
    store.write_bytes(config, b'{"segment_count": 3}')
    assert store.read_bytes(config) == b'{"segment_count": 3}'
    assert store.list("klippers_warehouse/alice/") == [KEY, config]

    store.delete(KEY)
    assert not store.exists(KEY)
    assert store.list() == [config]
    store.delete(KEY)  # deleting a missing key is not an error


def test_download_replaces_existing_file_and_leaves_no_temp(store: Storage, tmp_path: Path) -> None:
    store.write_bytes(KEY, b"new content")
    dest = tmp_path / "dl" / "video.mp4"
    dest.parent.mkdir()
    dest.write_bytes(b"old content that is longer")
    store.download(KEY, dest)
    assert dest.read_bytes() == b"new content"
    assert [p.name for p in dest.parent.iterdir()] == ["video.mp4"]


def test_list_is_a_plain_string_prefix_and_empty_for_unknown_prefixes(store: Storage) -> None:
    for key in ("a/b/c.txt", "a/bc.txt", "a/x/b.txt", "b.txt"):
        store.write_bytes(key, key.encode())
    assert store.list("a/b") == ["a/b/c.txt", "a/bc.txt"]
    assert store.list("a/b/") == ["a/b/c.txt"]
    assert store.list("") == ["a/b/c.txt", "a/bc.txt", "a/x/b.txt", "b.txt"]
    assert store.list("nothing/here/") == []


def test_missing_key_raises_key_not_found(store: Storage, tmp_path: Path) -> None:
    missing = "klippers_warehouse/alice/talk-1/nope.mp4"
    with pytest.raises(StorageKeyNotFoundError, match=r"nope\.mp4: no such key") as info:
        store.read_bytes(missing)
    assert info.value.key == missing
    assert isinstance(info.value, FileNotFoundError)
    dest = tmp_path / "dl" / "nope.mp4"
    with pytest.raises(StorageKeyNotFoundError):
        store.download(missing, dest)
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
    assert store.fingerprint(missing) is None


def test_upload_source_must_be_a_file(store: Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="upload source is not a file"):
        store.upload(tmp_path / "absent.mp4", KEY)
    with pytest.raises(StorageError, match="upload source is not a file"):
        store.upload(tmp_path, KEY)


# --- large files and interruptions -----------------------------------------------------------


def test_file_larger_than_the_multipart_threshold_arrives_intact(
    store: Storage, tmp_path: Path, s3: Any
) -> None:
    src = _file(tmp_path / "big.mp4", PART + MiB, seed=7)
    moved: list[int] = []
    store.upload(src, KEY, progress=moved.append)
    assert sum(moved) == src.stat().st_size
    assert store.download(KEY, tmp_path / "back.mp4").read_bytes() == src.read_bytes()
    if isinstance(store, S3Storage):
        head = s3.head_object(Bucket=store.bucket, Key=f"runs/42/{KEY}")
        assert head["ETag"].strip('"').endswith("-2"), "expected a 2-part multipart upload"


def test_local_upload_interrupted_mid_copy_leaves_no_file_and_keeps_the_old_one(
    tmp_path: Path,
) -> None:
    store = LocalStorage(tmp_path / "warehouse")
    replaced = "klippers_warehouse/alice/talk-1/thumbnail.png"
    store.write_bytes(replaced, b"previous version")
    src = _file(tmp_path / "src.bin", 3 * MiB, seed=3)
    for key in (KEY, replaced):
        with pytest.raises(Interrupted):
            store.upload(src, key, progress=_raise_after(MiB))
    assert not store.exists(KEY)
    assert store.list() == [replaced]
    assert store.read_bytes(replaced) == b"previous version"
    files = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*"))
    assert [f for f in files if f.endswith((".png", ".json", ".partial"))] == [
        f".klippers-digests/{replaced}.json",  # the digest record of the kept file
        replaced,
    ]


@pytest.mark.parametrize("size", [MiB, PART + MiB], ids=["single-part", "multipart"])
def test_s3_upload_cut_off_mid_transfer_leaves_no_object_and_keeps_the_old_one(
    s3: Any, bucket: str, cutting_endpoint: str, tmp_path: Path, size: int
) -> None:
    store = S3Storage(
        bucket,
        endpoint_url=cutting_endpoint,
        max_attempts=2,
        multipart_threshold=PART,
        multipart_chunksize=PART,
    )
    replaced = "klippers_warehouse/alice/talk-1/thumbnail.png"
    s3.put_object(Bucket=bucket, Key=replaced, Body=b"previous version")
    src = _file(tmp_path / "src.bin", size, seed=3)
    for key in (KEY, replaced):
        with pytest.raises(StorageUnavailableError, match=key):
            store.upload(src, key)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [replaced]
    assert s3.get_object(Bucket=bucket, Key=replaced)["Body"].read() == b"previous version"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


_KILLED_UPLOAD = """
import os, signal, sys
from pathlib import Path
from klippers.storage import LocalStorage, S3Storage

kind, where, src, key, limit = sys.argv[1:]
moved = 0

def die_after_limit(count):
    global moved
    moved += count
    if moved >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)

if kind == "local":
    store = LocalStorage(where)
else:
    store = S3Storage(where, endpoint_url=os.environ["TEST_S3_ENDPOINT"], max_concurrency=1,
                      multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20)
store.upload(Path(src), key, progress=die_after_limit)
"""


def _upload_and_get_killed(kind: str, where: str, src: Path, key: str, limit: int) -> None:
    """Run an upload in a child process that SIGKILLs itself once ``limit`` bytes moved."""
    args = [kind, where, str(src), key, str(limit)]
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED_UPLOAD), *args],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def test_local_process_killed_mid_upload_leaves_no_file(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "warehouse")
    src = _file(tmp_path / "big.mp4", 4 * MiB, seed=5)
    _upload_and_get_killed("local", str(store.root), src, KEY, limit=2 * MiB)
    partial = [p for p in store.root.rglob("*") if p.is_file()]
    assert len(partial) == 1, "the killed copy should have left its temp file behind"
    assert 0 < partial[0].stat().st_size < src.stat().st_size
    assert not store.exists(KEY)
    assert store.list() == []
    store.upload(src, KEY)  # a re-run completes it
    assert store.is_current(KEY, src)


def test_s3_process_killed_mid_upload_leaves_no_object(
    s3: Any, bucket: str, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_S3_ENDPOINT", s3_endpoint)
    src = _file(tmp_path / "big.mp4", 3 * PART, seed=5)
    _upload_and_get_killed("s3", bucket, src, KEY, limit=2 * PART + MiB)
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in uploads] == [KEY], "the kill should come mid multipart upload"
    parts = s3.list_parts(Bucket=bucket, Key=KEY, UploadId=uploads[0]["UploadId"])
    assert len(parts.get("Parts", [])) >= 1, "some parts should have arrived before the kill"
    store = S3Storage(bucket, endpoint_url=s3_endpoint)
    assert not store.exists(KEY)
    assert store.list() == []
    store.upload(src, KEY)  # a re-run completes it
    assert store.is_current(KEY, src)


# --- fingerprints ----------------------------------------------------------------------------


def test_is_current_detects_unchanged_and_changed_content(store: Storage, tmp_path: Path) -> None:
    src = _file(tmp_path / "segment_1.mp4", 200_000, seed=1)
    assert not store.is_current(KEY, src)
    store.upload(src, KEY)
    assert store.is_current(KEY, src)
    assert store.fingerprint(KEY) == Fingerprint(
        size=200_000, sha256=hashlib.sha256(src.read_bytes()).hexdigest()
    )

    same_size = _file(tmp_path / "other.mp4", 200_000, seed=2)
    assert not store.is_current(KEY, same_size)
    longer = _file(tmp_path / "longer.mp4", 200_001, seed=1)
    assert not store.is_current(KEY, longer)

    store.write_bytes(KEY, b"tiny")
    tiny = tmp_path / "tiny.bin"
    tiny.write_bytes(b"tiny")
    assert store.is_current(KEY, tiny)


def test_object_without_recorded_digest_is_never_current(
    s3: Any, bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    src = _file(tmp_path / "v.mp4", 1000)
    s3.put_object(Bucket=bucket, Key=KEY, Body=src.read_bytes())  # written by another tool
    store = S3Storage(bucket, endpoint_url=s3_endpoint)
    assert store.fingerprint(KEY) == Fingerprint(size=1000, sha256=None)
    assert not store.is_current(KEY, src)
    copy = tmp_path / "copy" / "v.mp4"
    assert content_fingerprint(store, KEY, copy) == Fingerprint(
        size=1000, sha256=hashlib.sha256(src.read_bytes()).hexdigest()
    )
    assert copy.read_bytes() == src.read_bytes()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the storage hashes by reading it."""
    calls: list[Path] = []
    real = storage_module.file_sha256

    def spy(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(storage_module, "file_sha256", spy)
    return calls


def test_local_digests_are_recorded_and_not_computed_again(
    tmp_path: Path, hashed: list[Path]
) -> None:
    store = LocalStorage(tmp_path / "warehouse")
    src = _file(tmp_path / "talk.mp4", 300_000, seed=4)
    store.upload(src, KEY)
    store.write_bytes("a/config.json", b"{}")
    assert store.fingerprint(KEY) == Fingerprint(size=300_000, sha256=_sha256(src))
    assert store.fingerprint("a/config.json") == Fingerprint(2, hashlib.sha256(b"{}").hexdigest())
    assert store.is_current(KEY, src)  # the file it was copied from, unchanged
    assert hashed == []
    assert store.list() == ["a/config.json", KEY]  # the records are not objects


def test_local_file_rewritten_behind_the_storage_is_hashed_again(
    tmp_path: Path, hashed: list[Path]
) -> None:
    store = LocalStorage(tmp_path / "warehouse")
    src = _file(tmp_path / "talk.mp4", 300_000, seed=4)
    store.upload(src, KEY)
    stored = store.root / KEY
    other = _file(tmp_path / "other.mp4", 300_000, seed=5)
    written = stored.stat().st_mtime_ns
    stored.write_bytes(other.read_bytes())  # same size, a later mtime
    os.utime(stored, ns=(written, written + 10**9))  # (a later clock tick, for sure)
    assert store.fingerprint(KEY) == Fingerprint(size=300_000, sha256=_sha256(other))
    assert hashed == [stored]
    assert store.fingerprint(KEY) == Fingerprint(size=300_000, sha256=_sha256(other))
    assert hashed == [stored], "the new digest is recorded"
    assert not store.is_current(KEY, src)
    assert hashed == [stored, src]


def test_local_source_found_identical_is_not_hashed_again(
    tmp_path: Path, hashed: list[Path]
) -> None:
    store = LocalStorage(tmp_path / "warehouse")
    src = _file(tmp_path / "talk.mp4", 300_000, seed=4)
    store.upload(src, KEY)
    same = tmp_path / "copy.mp4"
    same.write_bytes(src.read_bytes())
    assert store.is_current(KEY, same)
    assert store.is_current(KEY, same)
    assert hashed == [same]
    store.delete(KEY)
    assert not (store.root / ".klippers-digests" / f"{KEY}.json").exists()


# --- keys ------------------------------------------------------------------------------------

BAD_KEYS = [
    "",
    "../escape.txt",
    "klippers_warehouse/../../escape.txt",
    "/etc/passwd",
    "a\\..\\b",
    "a\x00b",
    "a\nb",
    "a//b",
    "./a",
    "a/.",
    "a/",
    ".klippers-tmp-x",
    ".klippers-digests/x",
    "x" * 1025,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused_before_anything_is_touched(
    store: Storage, tmp_path: Path, key: str
) -> None:
    src = _file(tmp_path / "src.bin", 10)
    before = sorted(tmp_path.rglob("*"))
    operations: list[Callable[[], object]] = [
        lambda: store.exists(key),
        lambda: store.read_bytes(key),
        lambda: store.write_bytes(key, b"x"),
        lambda: store.upload(src, key),
        lambda: store.download(key, tmp_path / "dest.bin"),
        lambda: store.delete(key),
        lambda: store.fingerprint(key),
        lambda: store.is_current(key, src),
    ]
    for operation in operations:
        with pytest.raises(StorageError, match="key"):
            operation()
    assert sorted(tmp_path.rglob("*")) == before
    assert store.list() == []


@pytest.mark.parametrize("prefix", ["../", "/abs/", "a//", "a\\b"])
def test_unsafe_list_prefixes_are_refused(store: Storage, prefix: str) -> None:
    with pytest.raises(StorageError, match="invalid storage key"):
        store.list(prefix)


def test_local_key_through_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = LocalStorage(tmp_path / "warehouse")
    store.root.mkdir()
    (store.root / "link").symlink_to(outside)
    with pytest.raises(StorageError, match="resolves outside"):
        store.write_bytes("link/x.txt", b"x")
    assert list(outside.iterdir()) == []


def test_local_temp_files_are_hidden_from_listing(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.write_bytes("a/b.txt", b"b")
    (tmp_path / "a" / ".klippers-tmp-c.txt.abc").write_bytes(b"partial")
    assert store.list() == ["a/b.txt"]


# --- S3 errors and configuration ------------------------------------------------------------


def test_missing_bucket_is_named(aws_env: None, s3_endpoint: str) -> None:
    store = S3Storage("klippers-no-such-bucket", endpoint_url=s3_endpoint)
    with pytest.raises(StorageError, match="bucket 'klippers-no-such-bucket' does not exist"):
        store.write_bytes(KEY, b"x")
    with pytest.raises(StorageError, match=r"s3://klippers-no-such-bucket/a/: bucket"):
        store.list("a/")


def test_unreachable_endpoint_is_retried_by_botocore_then_reported(aws_env: None) -> None:
    # A port nobody listens on: each attempt is refused at once.
    store = S3Storage("bucket", endpoint_url="http://127.0.0.1:9", max_attempts=2)
    attempts: list[str] = []
    store.client.meta.events.register(
        "before-send.s3.GetObject", lambda **kwargs: attempts.append("try")
    )
    with pytest.raises(StorageUnavailableError, match=r"s3://bucket/.*original\.mp4"):
        store.read_bytes(KEY)
    assert attempts == ["try", "try"]


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("AccessDenied", 403, StoragePermissionError),
        ("InvalidAccessKeyId", 403, StoragePermissionError),
        ("NoSuchKey", 404, StorageKeyNotFoundError),
        ("SlowDown", 503, StorageUnavailableError),
        ("InternalError", 500, StorageUnavailableError),
        ("InvalidRequest", 400, StorageError),
    ],
)
def test_service_errors_map_to_storage_errors(
    aws_env: None, code: str, status: int, error: type[StorageError]
) -> None:
    stub_module = pytest.importorskip("botocore.stub")
    client = boto3.client("s3", region_name=REGION)
    store = S3Storage("bucket", client=client)
    with stub_module.Stubber(client) as stub:
        stub.add_client_error("get_object", code, "denied or failing", status)
        with pytest.raises(error) as info:
            store.read_bytes(KEY)
    assert type(info.value) is error
    assert f"s3://bucket/{KEY}" in str(info.value)


def test_permission_error_tells_what_to_check(aws_env: None) -> None:
    stub_module = pytest.importorskip("botocore.stub")
    client = boto3.client("s3", region_name=REGION)
    with stub_module.Stubber(client) as stub:
        stub.add_client_error("put_object", "AccessDenied", "Access Denied", 403)
        with pytest.raises(StoragePermissionError, match="credentials and the bucket policy"):
            S3Storage("bucket", client=client).write_bytes(KEY, b"x")


def test_client_uses_botocore_standard_retries(aws_env: None) -> None:
    store = S3Storage("bucket", max_attempts=5)
    assert store.client.meta.config.retries == {"total_max_attempts": 5, "mode": "standard"}


@pytest.mark.parametrize("bad", ["Bad_Bucket", "ab", "a" * 64, "-bucket"])
def test_invalid_bucket_names_are_refused(bad: str) -> None:
    with pytest.raises(StorageError, match="invalid S3 bucket name"):
        S3Storage(bad, client=object())


def test_multipart_chunks_below_the_s3_minimum_are_refused() -> None:
    with pytest.raises(StorageError, match="5 MiB minimum"):
        S3Storage("bucket", client=object(), multipart_chunksize=MiB)


# --- open_storage ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://warehouse", "warehouse", ""),
        ("s3://warehouse/", "warehouse", ""),
        ("s3://warehouse/runs/7", "warehouse", "runs/7/"),
        ("s3://warehouse/runs/7/", "warehouse", "runs/7/"),
    ],
)
def test_open_storage_parses_s3_urls(aws_env: None, url: str, bucket: str, prefix: str) -> None:
    store = open_storage(url)
    assert isinstance(store, S3Storage)
    assert (store.bucket, store.prefix) == (bucket, prefix)
    assert store.describe("k.txt") == f"s3://{bucket}/{prefix}k.txt"


def test_open_storage_opens_local_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for location in (str(tmp_path / "w"), tmp_path / "w", f"file://{tmp_path}/w", "w"):
        store = open_storage(location)
        assert isinstance(store, LocalStorage)
        assert store.root == tmp_path / "w"
    spaced = open_storage(f"file://{tmp_path}/my%20warehouse")
    assert isinstance(spaced, LocalStorage)
    assert spaced.root == tmp_path / "my warehouse"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("s3://", "invalid S3 bucket name"),
        ("s3://Bad_Bucket/x", "invalid S3 bucket name"),
        ("s3://warehouse/../x", "invalid storage key"),
        ("s3://warehouse/x?versionId=1", "no query"),
        ("gs://warehouse/x", "unsupported storage URL"),
        ("file://otherhost/x", "local path"),
    ],
)
def test_open_storage_refuses_bad_locations(aws_env: None, url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        open_storage(url)


def test_open_storage_without_location_uses_the_bucket_variable(
    aws_env: None, s3: Any, bucket: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StorageError, match=ENV_BUCKET):
        open_storage(None)
    with pytest.raises(StorageError, match=ENV_BUCKET):
        open_storage(None, environ={ENV_BUCKET: "  "})

    monkeypatch.setenv(ENV_BUCKET, bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # boto3 reads the endpoint natively
    store = open_storage(None)
    assert isinstance(store, S3Storage)
    assert store.describe() == f"s3://{bucket}/"
    store.write_bytes("hello.txt", b"hi")
    assert s3.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hi"

    explicit = open_storage(None, environ={ENV_BUCKET: "other-bucket"})
    assert isinstance(explicit, S3Storage)
    assert explicit.bucket == "other-bucket"


def test_local_storage_works_without_boto3_and_s3_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` now fails
    store = open_storage(tmp_path)
    store.write_bytes("a.txt", b"a")
    assert store.read_bytes("a.txt") == b"a"
    with pytest.raises(StorageError, match=r"pip install 'klippers\[aws\]'"):
        open_storage("s3://warehouse")


def test_local_write_onto_a_file_used_as_folder_is_a_storage_error(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.write_bytes("a.txt", b"a")
    with pytest.raises(StorageError, match=r"a\.txt/b\.txt"):
        store.write_bytes("a.txt/b.txt", b"b")
    assert store.list("a.txt/") == []


# --- S3 under a least-privilege role ---------------------------------------------------------
# A role that may list only below a prefix gets 403 (not 404) for a read of a missing key,
# so the S3 storage asks by listing, and a denial names the key and the missing permission.

ARN = "arn:aws:s3:::bucket"


def _operations(store: S3Storage) -> list[str]:
    seen: list[str] = []
    store.client.meta.events.register(
        "before-call.s3", lambda model, **kwargs: seen.append(model.name)
    )
    return seen


def test_s3_asks_whether_a_key_exists_by_listing_it(
    aws_env: None, s3_endpoint: str, bucket: str
) -> None:
    store = S3Storage(bucket, prefix="runs/42", endpoint_url=s3_endpoint)
    store.write_bytes(f"{KEY}.json", b"{}")  # a longer key with the key as prefix
    seen = _operations(store)
    assert not store.exists(KEY)
    assert store.fingerprint(KEY) is None
    assert storage_module.read_if_exists(store, KEY) is None
    assert seen == ["ListObjectsV2"] * 3, "a missing key is never read"
    store.write_bytes(KEY, b"content")
    seen.clear()
    assert store.exists(KEY)
    assert storage_module.read_if_exists(store, KEY) == b"content"
    assert store.fingerprint(KEY) == Fingerprint(7, hashlib.sha256(b"content").hexdigest())
    assert seen == ["ListObjectsV2", "ListObjectsV2", "GetObject", "ListObjectsV2", "HeadObject"]


def test_read_if_exists_on_a_local_folder(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    assert storage_module.read_if_exists(store, KEY) is None
    store.write_bytes(KEY, b"x")
    assert storage_module.read_if_exists(store, KEY) == b"x"


def _stubbed(*responses: tuple[str, str | dict[str, Any]]) -> S3Storage:
    """An S3 storage whose client answers ``(operation, error code or response)`` in order."""
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name=REGION)
    stub = Stubber(client)
    for operation, answer in responses:
        if isinstance(answer, str):
            stub.add_client_error(operation, answer, f"{answer} message", 403)
        else:
            stub.add_response(operation, answer)
    stub.activate()
    return S3Storage("bucket", client=client)


def test_a_denied_read_of_a_key_that_is_not_listed_is_a_missing_key(aws_env: None) -> None:
    store = _stubbed(("get_object", "AccessDenied"), ("list_objects_v2", {"KeyCount": 0}))
    with pytest.raises(StorageKeyNotFoundError, match="no such key"):
        store.read_bytes(KEY)


def test_a_denied_read_of_a_listed_key_names_the_permission(aws_env: None) -> None:
    listed = {"Contents": [{"Key": KEY}], "KeyCount": 1}
    store = _stubbed(("get_object", "AccessDenied"), ("list_objects_v2", listed))
    with pytest.raises(StoragePermissionError) as denied:
        store.read_bytes(KEY)
    assert str(denied.value) == (
        f"s3://bucket/{KEY}: access denied (AccessDenied): needs s3:GetObject on "
        f"arn:aws:s3:::bucket/{KEY}; check the credentials and the bucket policy"
    )


def test_a_denied_read_that_cannot_be_listed_names_both_permissions(aws_env: None) -> None:
    store = _stubbed(("head_object", "403"), ("list_objects_v2", "AccessDenied"))
    with pytest.raises(StoragePermissionError) as denied:
        store.download(KEY, Path("unused.mp4"))
    message = str(denied.value)
    assert f"needs s3:GetObject on arn:aws:s3:::bucket/{KEY}, or it is missing" in message
    assert f"telling needs s3:ListBucket on arn:aws:s3:::bucket for s3:prefix {KEY!r}" in message


@pytest.mark.parametrize(
    ("operation", "attempt", "needed"),
    [
        ("put_object", lambda s: s.write_bytes(KEY, b"x"), f"s3:PutObject on {ARN}/{KEY}"),
        ("delete_object", lambda s: s.delete(KEY), f"s3:DeleteObject on {ARN}/{KEY}"),
        ("list_objects_v2", lambda s: s.exists(KEY), f"s3:ListBucket on {ARN} for s3:prefix"),
        ("list_objects_v2", lambda s: s.list("a/"), f"s3:ListBucket on {ARN} for s3:prefix 'a/'"),
    ],
)
def test_every_denial_names_the_missing_permission(
    aws_env: None, operation: str, attempt: Callable[[S3Storage], object], needed: str
) -> None:
    store = _stubbed((operation, "AccessDenied"))
    with pytest.raises(StoragePermissionError, match=re.escape(f"needs {needed}")):
        attempt(store)


def test_a_kms_denial_names_the_key_permission(aws_env: None) -> None:
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error(
            "put_object",
            "AccessDenied",
            "User: arn:aws:sts::1:assumed-role/job is not authorized to perform: "
            "kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:1:key/k",
            403,
        )
        with pytest.raises(StoragePermissionError, match="needs kms:GenerateDataKey on the bucket"):
            S3Storage("bucket", client=client).write_bytes(KEY, b"x")
