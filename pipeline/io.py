"""Writing outputs safely and knowing when a stage is up to date.

Every file is written to a temporary name in its final folder, then renamed: a run that fails
leaves the previous outputs untouched. Each stage records a manifest (hashes of its inputs, of its
settings and of the pipeline code); when nothing changed the stage is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__


def file_stamp(path: str | Path) -> tuple[int, ...]:
    """Inode, size and times of a file: they all change when the file is rewritten (every output is
    written to a temporary file renamed over it, so a new inode each time).
    """
    stat = Path(path).stat()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


_HASHES: dict[str, tuple[tuple[int, ...], str]] = {}


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks.

    Kept for the process while the file is unchanged (:func:`file_stamp`), as a run checks the
    same raw inputs in several stages' manifests; a file changed in the last two seconds is always
    read again (a rewrite in place within the file system's clock tick keeps its stamp).
    """
    key, stamp = str(Path(path).resolve()), file_stamp(path)
    if key in _HASHES and _HASHES[key][0] == stamp:
        return _HASHES[key][1]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    if time.time_ns() - stamp[2] > 2_000_000_000:
        _HASHES[key] = (stamp, digest.hexdigest())
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # writers that refuse to overwrite (GDAL) get a fresh name
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_atomic(target: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` then move the result onto ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    return write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(target: str | Path, data: object) -> Path:
    return write_text(target, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def write_csv(target: str | Path, frame: pd.DataFrame) -> Path:
    """Write a table the pipeline reads back (``,``, ``.`` decimals, LF, no BOM), atomically.

    For a table people open in a spreadsheet, use :func:`write_csv_fr`.
    """
    return write_atomic(target, lambda p: frame.to_csv(p, index=False, lineterminator="\n"))


def write_csv_fr(target: str | Path, frame: pd.DataFrame) -> Path:
    """Write a table people open, as a French Excel reads it, atomically: ``;``-separated, decimal
    comma, UTF-8 with a BOM, CRLF line ends; whole numbers without separators (a spreadsheet shows
    them in its own locale and keeps them numbers).

    Parameters
    ----------
    target : str or Path
        The CSV file.
    frame : DataFrame
        The table, with the headers people read.

    Returns
    -------
    Path
        ``target``.
    """
    # the one place a text cell becomes a spreadsheet cell: formula neutralisation goes here
    cells = frame
    return write_atomic(
        target,
        lambda p: cells.to_csv(
            p, index=False, sep=";", decimal=",", encoding="utf-8-sig", lineterminator="\r\n"
        ),
    )


_READ: dict[str, tuple[tuple[int, ...], object]] = {}


def read_geoparquet(path: str | Path):
    """``geopandas.read_parquet(path)``, kept for the process while the file is unchanged
    (:func:`file_stamp`): the stages of one run read the same tables (communes, coverage)
    several times, and decoding their geometry is the costly part. Returns a copy, which the caller
    may change.
    """
    import geopandas as gpd

    path = Path(path)
    stamp, key = file_stamp(path), str(path.resolve())
    if key not in _READ or _READ[key][0] != stamp:
        _READ.pop(key, None)
        _READ[key] = (stamp, gpd.read_parquet(path))
        while len(_READ) > 8:  # the tables of one run; older ones are let go
            _READ.pop(next(iter(_READ)))
    return _READ[key][1].copy()


def _to_parquet(path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(path, index=False, compression="zstd")


def write_parquet(target: str | Path, frame: pd.DataFrame) -> Path:
    """Write a (Geo)DataFrame as (Geo)Parquet, deterministically and atomically."""
    return write_atomic(target, lambda p: _to_parquet(p, frame))


def replace_dir(target: str | Path, fill: Callable[[Path], None]) -> Path:
    """Build a folder in a temporary sibling with ``fill(tmp)``, then swap it for ``target``:
    no half-written folder, and no stale file left from an earlier run.
    """
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; outputs are meant to be shared
    try:
        fill(tmp)
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def _cached(compute, *, cache, name: str, key: str, keep: int, suffix: str, read, write):
    """``compute()``, kept in the folder ``cache`` as ``<name>.<key><suffix>`` (read with
    ``read(path)``, written with ``write(path, result)``): a damaged copy is computed again, and
    the ``keep`` most recently used copies of ``name`` are kept. Without ``cache``, computes.
    """
    if cache is None:
        return compute()
    target = Path(cache) / f"{name}.{key[:24]}{suffix}"
    if target.exists():
        try:
            result = read(target)
            target.touch()  # recently used
            return result
        except (OSError, ValueError, EOFError):  # a damaged copy: compute again
            pass
    result = compute()
    write_atomic(target, lambda tmp: write(tmp, result))
    copies = sorted(
        Path(cache).glob(f"{name}.*{suffix}"), key=lambda p: (p.stat().st_mtime, p.name)
    )
    for old in copies[:-keep]:
        old.unlink(missing_ok=True)
    return result


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as stored:
        return {k: stored[k] for k in stored.files}


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def cached_arrays(
    compute: Callable[[], dict[str, np.ndarray]],
    *,
    cache: str | Path | None,
    name: str,
    key: str,
    keep: int = 4,
) -> dict[str, np.ndarray]:
    """``compute()`` (a dict of numpy arrays), kept in the folder ``cache`` as
    ``<name>.<key>.npz``.

    For results derived from the scope's geometry alone (adjacency, simplified map geometry):
    ``key`` must hash everything they depend on, the pipeline's code included
    (:func:`code_fingerprint`), so a stale copy is never read. The ``keep`` most recent copies of
    ``name`` are kept (one per scope and setting tried lately). Without ``cache``, computes.
    """
    return _cached(
        compute,
        cache=cache,
        name=name,
        key=key,
        keep=keep,
        suffix=".npz",
        read=_read_npz,
        write=_write_npz,
    )


def cached_frame(
    compute: Callable[[], pd.DataFrame],
    *,
    cache: str | Path | None,
    name: str,
    key: str,
    keep: int = 4,
) -> pd.DataFrame:
    """``compute()`` (a table), kept in the folder ``cache`` as ``<name>.<key>.parquet``, like
    :func:`cached_arrays`: ``key`` must hash everything the table depends on, the code included.
    """
    return _cached(
        compute,
        cache=cache,
        name=name,
        key=key,
        keep=keep,
        suffix=".parquet",
        read=pd.read_parquet,
        write=_to_parquet,
    )


# --------------------------------------------------------------------------- stage manifests


def code_fingerprint() -> str:
    """Hash of the pipeline's own source files: changing the code rebuilds the outputs."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class Manifest:
    """What a stage was built from, stored in ``<processed>/.manifests/<stage>.json``.

    Parameters
    ----------
    folder : path
        The processed-data folder.
    stage : str
        Stage name.
    inputs : list of path
        Files the stage reads.
    settings : str
        Fingerprint of the settings the stage uses.
    outputs : list of path
        Files the stage writes.
    """

    def __init__(
        self, folder: Path, stage: str, *, inputs: list[Path], settings: str, outputs: list[Path]
    ):
        self.path = Path(folder) / ".manifests" / f"{stage}.json"
        self.inputs = [Path(p) for p in inputs]
        self.outputs = [Path(p) for p in outputs]
        self.settings = settings

    def _current(self) -> dict:
        return {
            "inputs": {p.name: sha256_file(p) for p in self.inputs if p.exists()},
            "settings": self.settings,
            "code": code_fingerprint(),
        }

    def up_to_date(self) -> bool:
        """True when every output exists and inputs, settings and code are unchanged."""
        if not self.path.exists() or not all(p.exists() for p in self.outputs):
            return False
        try:
            recorded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
        outputs_ok = recorded.get("outputs") == {p.name: sha256_file(p) for p in self.outputs}
        return (
            outputs_ok
            and {k: recorded.get(k) for k in ("inputs", "settings", "code")} == self._current()
        )

    def record(self) -> None:
        """Store the manifest once the outputs are written."""
        data = self._current() | {"outputs": {p.name: sha256_file(p) for p in self.outputs}}
        write_json(self.path, data)


def write_geopackage(target: str | Path, layers: dict[str, pd.DataFrame]) -> Path:
    """Write several layers into one GeoPackage (for QGIS), deterministically and atomically.

    GDAL stamps the current time into a GeoPackage; it is fixed so that the same data gives the
    same bytes.
    """
    import pyogrio

    pyogrio.set_gdal_config_options(
        {"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z", "OGR_SQLITE_JOURNAL": "OFF"}
    )

    def writer(tmp: Path) -> None:
        for name, frame in layers.items():
            pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG", append=tmp.exists())

    return write_atomic(target, writer)


def cached_table(
    source: str | Path,
    read: Callable[[Path], pd.DataFrame],
    *,
    cache: str | Path | None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """``read(source)``, kept as Parquet in the folder ``cache`` under the source's sha256.

    Raw inputs are never edited in place (a new download is a new file, so a new hash): the next
    stage or run reads the Parquet copy instead of decompressing and parsing the source again.
    ``columns`` reads only those columns of the copy. Without ``cache``, the source is read.
    """
    source = Path(source)
    if cache is None or not source.is_file():
        frame = read(source)
        return frame[columns] if columns else frame
    target = Path(cache) / f"{source.name}.{sha256_file(source)[:16]}.parquet"
    if target.exists():
        try:
            return pd.read_parquet(target, columns=columns)
        except (OSError, ValueError):  # a damaged copy: read the source again
            pass
    frame = read(source)
    write_parquet(target, frame)
    return frame[columns] if columns else frame
