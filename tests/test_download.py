import hashlib
import socket
import time

import pytest
from http_server import serve

from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.download import ArchiveSpec, ensure_archive, file_checksums

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB


def spec_for(base: str, payload: bytes = PAYLOAD, name: str = "archive.zip") -> ArchiveSpec:
    return ArchiveSpec(name, f"{base}/upstream/{name}", hashlib.md5(payload).hexdigest())


def fetch(spec, raw, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 5)
    return ensure_archive(spec, raw, progress=False, **kw)


def test_download_success_records_both_checksums(tmp_path):
    with serve() as srv:
        srv.files["archive.zip"] = PAYLOAD
        rec = fetch(spec_for(srv.base), tmp_path)
    assert rec.path.read_bytes() == PAYLOAD
    assert rec.md5 == hashlib.md5(PAYLOAD).hexdigest()
    assert rec.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert rec.origin == "downloaded"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive.zip"]  # no .part left


def test_resume_after_cut_connection(tmp_path):
    with serve() as srv:
        srv.files["archive.zip"] = PAYLOAD
        srv.cut_after = 300_000
        rec = fetch(spec_for(srv.base), tmp_path)
        ranges = [r for _, r in srv.requests]
    assert rec.path.read_bytes() == PAYLOAD
    assert ranges == [None, "bytes=300000-"]


def test_restart_when_server_ignores_range(tmp_path):
    with serve() as srv:
        srv.files["archive.zip"] = PAYLOAD
        srv.honour_range = False
        srv.cut_after = 1000
        rec = fetch(spec_for(srv.base), tmp_path)
    assert rec.path.read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_file_and_names_checksums(tmp_path):
    with serve() as srv:
        srv.files["archive.zip"] = b"tampered" + PAYLOAD
        spec = spec_for(srv.base)
        with pytest.raises(GradmetaError) as err:
            fetch(spec, tmp_path)
    msg = str(err.value)
    assert "archive.zip" in msg and spec.md5 in msg and hashlib.md5(b"tampered" + PAYLOAD).hexdigest() in msg
    assert "\n" not in msg
    assert list(tmp_path.iterdir()) == []


def test_404_fails_at_once_without_retries(tmp_path):
    with serve() as srv:
        with pytest.raises(GradmetaError, match="HTTP 404"):
            fetch(spec_for(srv.base), tmp_path, retries=3)
        assert len(srv.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_refused_connection_fails_within_seconds(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    spec = ArchiveSpec("archive.zip", f"http://127.0.0.1:{port}/archive.zip", "0" * 32)
    start = time.monotonic()
    with pytest.raises(GradmetaError, match="failed after 3 attempts.*no network"):
        ensure_archive(spec, tmp_path, retries=2, backoff=0.5, timeout=5, progress=False)
    assert time.monotonic() - start < 5
    assert not (tmp_path / "archive.zip").exists()


def test_hand_placed_archive_is_used_without_network(tmp_path):
    (tmp_path / "archive.zip").write_bytes(PAYLOAD)
    spec = ArchiveSpec("archive.zip", "http://127.0.0.1:9/never-contacted", hashlib.md5(PAYLOAD).hexdigest())
    rec = ensure_archive(spec, tmp_path, retries=0, progress=False)
    assert rec.origin == "cached" and rec.sha256 == hashlib.sha256(PAYLOAD).hexdigest()


def test_hand_placed_archive_with_wrong_checksum_fails(tmp_path):
    (tmp_path / "archive.zip").write_bytes(b"wrong")
    spec = ArchiveSpec("archive.zip", "http://127.0.0.1:9/x", hashlib.md5(PAYLOAD).hexdigest())
    with pytest.raises(GradmetaError, match="checksum mismatch, expected md5"):
        ensure_archive(spec, tmp_path, retries=0, progress=False)


def test_mirror_replaces_upstream_location(tmp_path):
    with serve() as srv:
        srv.files["archive.zip"] = PAYLOAD
        spec = ArchiveSpec("archive.zip", "http://127.0.0.1:9/upstream/archive.zip", hashlib.md5(PAYLOAD).hexdigest())
        rec = fetch(spec, tmp_path, mirror=srv.base + "/mirror/")
        assert srv.requests[0][0] == "/mirror/archive.zip"
    assert rec.path.read_bytes() == PAYLOAD


def test_second_call_uses_cache(tmp_path):
    with serve() as srv:
        srv.files["archive.zip"] = PAYLOAD
        fetch(spec_for(srv.base), tmp_path)
        rec = fetch(spec_for(srv.base), tmp_path)
        assert len(srv.requests) == 1
    assert rec.origin == "cached"
    assert file_checksums(rec.path)[0] == hashlib.md5(PAYLOAD).hexdigest()


def test_unreachable_host_fails_fast_without_retries(tmp_path, monkeypatch):
    import gradmeta.datasets.download as dl

    def blackhole(address, timeout):
        raise TimeoutError("timed out")

    monkeypatch.setattr(dl.socket, "create_connection", blackhole)
    spec = ArchiveSpec("archive.zip", "http://example.invalid:8080/archive.zip", "0" * 32)
    start = time.monotonic()
    offline = (r"no connection to example.invalid:8080 within 5 s; no network\? place archive.zip in .* by hand "
               r"\(data.real.raw_dir sets that folder\), or set data.real.mirror")
    with pytest.raises(GradmetaError, match=offline):
        ensure_archive(spec, tmp_path, retries=5, timeout=30, progress=False)
    assert time.monotonic() - start < 1
    assert list(tmp_path.iterdir()) == []
