"""Writing outputs safely and knowing when a stage is up to date.

Every file is written to a temporary name in its final folder, then renamed: a run that fails
leaves the previous outputs untouched. Each stage records a manifest (hashes of its inputs, of its
settings and of the pipeline code); when nothing changed the stage is skipped.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .errors import InputChanged, OutputsBusy


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


TMP_MARK = ".tmp"  # in the name of every temporary file or folder of a write (see clean_leftovers)


def _through_link(target: Path) -> Path:
    """Where a write to ``target`` goes: a symbolic link is written through, never replaced."""
    return target.resolve() if target.is_symlink() else target


@contextlib.contextmanager
def _naming(target: Path) -> Iterator[None]:
    """An :class:`OSError` raised without a file name (disk full in a writer) names ``target``."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(target)) from exc
        raise


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds.

    Parameters
    ----------
    target : path
        The file to write; a symbolic link is written through (its target is replaced).

    Yields
    ------
    Path
        A fresh name in the same folder, marked as temporary (``.<stem>.<random>.tmp<suffix>``).
    """
    target = _through_link(Path(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    with _naming(target):
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=f"{TMP_MARK}{target.suffix}", dir=target.parent
        )
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # writers that refuse to overwrite (GDAL) get a fresh name
    try:
        with _naming(target):
            yield tmp_path
            os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_atomic(target: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` then move the result onto ``target`` (:func:`atomic_path`).

    Parameters
    ----------
    target : path
        The file written.
    writer : callable
        ``writer(path)`` writes the whole file at ``path``; if it fails, ``target`` is untouched.

    Returns
    -------
    Path
        ``target``.
    """
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8, atomically (:func:`write_atomic`); return ``target``."""
    return write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(target: str | Path, data: object) -> Path:
    """Write ``data`` as indented JSON with sorted keys, atomically; return ``target``."""
    return write_text(target, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def write_csv(target: str | Path, frame: pd.DataFrame) -> Path:
    """Write a table the pipeline reads back (``,``, ``.`` decimals, LF, no BOM), atomically, its
    text cells made inert (:func:`spreadsheet_safe`; :func:`read_csv` takes the mark off). For a
    table people open in a spreadsheet, use :func:`write_csv_fr`.

    Parameters
    ----------
    target : path
        The file written.
    frame : pandas.DataFrame
        The table.

    Returns
    -------
    Path
        ``target``.
    """
    safe = spreadsheet_safe(frame)
    return write_atomic(target, lambda p: safe.to_csv(p, index=False, lineterminator="\n"))


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
    cells = spreadsheet_safe(frame)  # the one place a text cell becomes a spreadsheet cell
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

    target = _through_link(Path(target))  # a linked folder is filled where the link points
    target.parent.mkdir(parents=True, exist_ok=True)
    with _naming(target):
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TMP_MARK, dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; outputs are meant to be shared
    try:
        with _naming(target):
            fill(tmp)
        old = target.with_name(f".{target.name}{TMP_MARK}.old")
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
    """``compute()``, kept in the folder ``cache`` as ``<name>.<key><suffix>``.

    A copy is used only when ``read(path, key)`` succeeds: the copy's own checks (zip CRCs, Parquet
    page checksums) hold and it carries ``key`` inside (a valid copy of another scope renamed to
    this name is refused); otherwise it is computed again and rewritten (``write(path, result,
    key)``). The ``keep`` most recently used copies of ``name`` are kept. Without ``cache``,
    computes.
    """
    if cache is None:
        return compute()
    target = Path(cache) / f"{name}.{key[:24]}{suffix}"
    if target.exists():
        try:
            result = read(target, key)
            target.touch()  # recently used
            return result
        except Exception:  # noqa: BLE001 — a damaged or foreign disposable copy: compute again
            pass
    result = compute()
    write_atomic(target, lambda tmp: write(tmp, result, key))
    copies = sorted(
        Path(cache).glob(f"{name}.*{suffix}"), key=lambda p: (p.stat().st_mtime, p.name)
    )
    for old in copies[:-keep]:
        old.unlink(missing_ok=True)
    return result


_KEY = "__cache_key__"


def _read_npz(path: Path, key: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}  # reading checks each member's CRC
    if str(arrays.pop(_KEY, "")) != key:
        raise ValueError(f"{path}: a copy of other data")
    return arrays


def _write_npz(path: Path, arrays: dict[str, np.ndarray], key: str) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays, **{_KEY: np.array(key)})


def _read_frame(path: Path, key: str, columns: list[str] | None = None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    if (pq.read_schema(path).metadata or {}).get(_KEY.encode()) != key.encode():
        raise ValueError(f"{path}: a copy of other data")
    return pd.read_parquet(path, columns=columns, page_checksum_verification=True)


def _write_frame(path: Path, frame: pd.DataFrame, key: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _KEY: key})
    pq.write_table(table, path, compression="zstd", write_page_checksum=True)


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
    (:func:`code_fingerprint`), so a stale copy is never read. A copy that is damaged or holds
    another key is computed again. The ``keep`` most recent copies of ``name`` are kept (one per
    scope and setting tried lately). Without ``cache``, computes.
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
        read=_read_frame,
        write=_write_frame,
    )


# --------------------------------------------------------------------------- one run at a time

LOCK_NAME = ".lock"
LOCK_WAIT_S = 10.0  # a second run waits this long for the first to end, then says why it stops


def _holder(text: str) -> str:
    """``pid 1234 since 2026-12-03 12:01:02 UTC`` from a lock file's content."""
    try:
        data = json.loads(text)
        return f"pid {int(data['pid'])} since {data['since']}"
    except (ValueError, KeyError, TypeError):
        return "a process that left no pid"


@contextlib.contextmanager
def output_lock(folders: dict[str, Path], *, wait: float | None = None) -> Iterator[str | None]:
    """Hold the run's lock on its output folders, then remove what killed runs left behind.

    The lock is ``<first folder>/.lock``, locked with ``flock`` (released by the system when the
    process ends, however it ends) and holding the pid of its holder. A lock file whose holder has
    gone (killed, machine restarted) is a stale lock: it is taken over. While another run holds it,
    this one waits up to ``wait`` seconds (:data:`LOCK_WAIT_S`), then stops with the holder's pid.

    Parameters
    ----------
    folders : dict of str to path
        The output folders by ``[paths]`` key (:attr:`pipeline.config.Settings.output_dirs`).
    wait : float, optional
        Seconds to wait for another run.

    Yields
    ------
    str or None
        The holder of a stale lock that was taken over (for a message), else None.

    Raises
    ------
    OutputsBusy
        When another run still holds the lock after ``wait`` seconds.
    """
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock, the leftovers are still removed
        clean_leftovers(folders.values())
        yield None
        return
    first = next(iter(folders.values()))
    first.mkdir(parents=True, exist_ok=True)
    path = first / LOCK_NAME
    deadline = time.monotonic() + (LOCK_WAIT_S if wait is None else wait)
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 — held for the whole run
    try:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    named = ", ".join(str(f) for f in folders.values())
                    raise OutputsBusy(
                        f"{path}: the output folders ({named}) are in use by another run "
                        f"({_holder(fh.read())}); wait for it to end and run again, or give this "
                        "run other folders under [paths]"
                    ) from None
                time.sleep(0.1)
        fh.seek(0)
        left = fh.read().strip()
        fh.seek(0)
        fh.truncate()
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        fh.write(json.dumps({"pid": os.getpid(), "since": since}))
        fh.flush()
        clean_leftovers(folders.values())
        try:
            yield _holder(left) if left else None
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
    finally:
        fh.close()  # releases the lock


def clean_leftovers(folders) -> list[Path]:
    """Remove the temporary files and folders that a killed run left in ``folders``.

    Only this module's own names are touched: hidden entries carrying :data:`TMP_MARK`
    (``.<name>.<random>.tmp<suffix>`` files of :func:`atomic_path`, ``.<name>.<random>.tmp`` and
    ``.<name>.tmp.old`` folders of :func:`replace_dir`). Called under :func:`output_lock`, when no
    other run can be writing.

    Parameters
    ----------
    folders : iterable of path
        The output folders, searched with their subfolders.

    Returns
    -------
    list of Path
        What was removed.
    """
    import shutil

    removed = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for root, dirs, files in os.walk(folder):
            for name in [d for d in dirs if d.startswith(".") and TMP_MARK in d]:
                shutil.rmtree(Path(root) / name, ignore_errors=True)
                dirs.remove(name)
                removed.append(Path(root) / name)
            for name in files:
                if name.startswith(".") and TMP_MARK in name:
                    (Path(root) / name).unlink(missing_ok=True)
                    removed.append(Path(root) / name)
    return sorted(removed)


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
        """Name the manifest file and keep what it checks (see the class parameters)."""
        self.stage = stage
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

    def snapshot(self) -> dict:
        """The hashes of the inputs, settings and code now: taken before a stage reads its inputs
        and given back to :meth:`up_to_date` and :meth:`record`.

        Returns
        -------
        dict
            ``inputs`` (file name to sha256), ``settings`` and ``code`` fingerprints.
        """
        return self._current()

    def up_to_date(self, snapshot: dict | None = None) -> bool:
        """True when every output exists and inputs, settings and code are unchanged.

        Parameters
        ----------
        snapshot : dict, optional
            :meth:`snapshot` taken just before (computed here when not given).

        Returns
        -------
        bool
        """
        if not self.path.exists() or not all(p.exists() for p in self.outputs):
            return False
        try:
            recorded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
        outputs_ok = recorded.get("outputs") == {p.name: sha256_file(p) for p in self.outputs}
        return outputs_ok and {k: recorded.get(k) for k in ("inputs", "settings", "code")} == (
            snapshot or self._current()
        )

    def record(self, snapshot: dict | None = None) -> None:
        """Store the manifest once the outputs are written.

        Parameters
        ----------
        snapshot : dict, optional
            :meth:`snapshot` taken before the stage read its inputs: what is recorded is what was
            read. An input that changed since is not recorded; the manifest is removed instead, so
            that the next run rebuilds the stage.

        Raises
        ------
        InputChanged
            Naming the input file that changed while the stage read it.
        """
        now = self._current()
        if snapshot is not None and snapshot["inputs"] != now["inputs"]:
            self.path.unlink(missing_ok=True)
            before, after = snapshot["inputs"], now["inputs"]
            changed = [p for p in self.inputs if before.get(p.name) != after.get(p.name)]
            raise InputChanged(
                f"{changed[0] if changed else self.inputs[0]}: changed while the {self.stage} "
                "stage was reading it; its outputs come from the earlier content and are not "
                "recorded as up to date: run again once the file is complete"
            )
        data = (snapshot or now) | {"outputs": {p.name: sha256_file(p) for p in self.outputs}}
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
            try:
                pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG", append=tmp.exists())
            except pyogrio.errors.DataSourceError as exc:  # GDAL's own error for a full disk
                if "No space left" not in str(exc):
                    raise
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from exc

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
    ``columns`` reads only those columns of the copy. A copy that is damaged, holds another
    source's table or lacks a column is read from the source again. Without ``cache``, the source
    is read.
    """
    source = Path(source)
    if cache is None or not source.is_file():
        frame = read(source)
        return frame[columns] if columns else frame
    digest = sha256_file(source)
    target = Path(cache) / f"{source.name}.{digest[:16]}.parquet"
    if target.exists():
        try:
            return _read_frame(target, digest, columns)
        except Exception:  # noqa: BLE001 — a damaged or foreign disposable copy: read again
            pass
    frame = read(source)
    write_atomic(target, lambda tmp: _write_frame(tmp, frame, digest))
    return frame[columns] if columns else frame


# --------------------------------------------------------------------------- what people open

_SCRIPT_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def script_json(data: object) -> str:
    r"""``data`` as compact JSON that is safe inside an HTML ``<script>`` element.

    Parameters
    ----------
    data : object
        Anything :func:`json.dumps` takes; keys are sorted, so the same data gives the same text.

    Returns
    -------
    str
        JSON in which ``<``, ``>``, ``&``, U+2028 and U+2029 are written as ``\u003c``,
        ``\u003e``, ``\u0026``, ``\u2028`` and ``\u2029``: no text of the data (a CPTS named
        ``</script>`` or ``<!--<script>``) can end the script or switch the HTML parser into
        another of its script states, and the value read by the page is the same.
    """
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    for char, escaped in _SCRIPT_ESCAPES:
        text = text.replace(char, escaped)
    return text


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


def _formula_safe(value: object) -> object:
    """``value`` with a leading ``'`` if it is a formula-like text (or such a text already
    marked, so that :func:`read_csv` can take exactly one mark off).
    """
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_STARTS):
        return value if _NUMBER.fullmatch(value) else "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its text cells made inert for a spreadsheet.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be run
    as a formula by Excel or LibreOffice: it gets a leading ``'`` (the usual neutralisation, shown
    as is). Numbers, and texts that are plain numbers (``-3``, ``+2,5``), are left as they are.
    :func:`read_csv` removes the mark again when the pipeline reads its own files back.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table about to be written; it is not changed.

    Returns
    -------
    pandas.DataFrame
        The same table, or a copy with the marked cells.
    """
    out = frame
    for column in frame.columns:
        values = frame[column]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
            continue
        marked = values.map(_formula_safe)
        if not marked.equals(values):
            out = out.copy() if out is frame else out
            out[column] = marked
    return out


def read_csv(path: str | Path) -> pd.DataFrame:
    """A CSV the pipeline wrote with :func:`write_csv` (or :func:`write_csv_fr`: a BOM, ``;``),
    every column as text, marks removed.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    pandas.DataFrame
        Every cell as text (empty cells as ``""``), with the ``'`` that :func:`spreadsheet_safe`
        put before a formula-like text taken off again.
    """
    with open(path, "rb") as head:
        french = head.read(3) == b"\xef\xbb\xbf"  # write_csv_fr: BOM, ';'
    frame = pd.read_csv(
        path,
        dtype=str,
        keep_default_na=False,
        sep=";" if french else ",",
        encoding="utf-8-sig" if french else "utf-8",
    )
    for column in frame.columns:
        values = frame[column]
        if values.str.startswith("'").any():
            frame[column] = values.map(unmark)
    return frame


def unmark(text: str) -> str:
    """``text`` without the ``'`` that :func:`spreadsheet_safe` (or the map composer's CSV) put
    before a formula-like text; any other text is returned as is.

    Parameters
    ----------
    text : str
        A cell as read from a CSV.

    Returns
    -------
    str
    """
    return text[1:] if text.startswith("'") and _formula_safe(text[1:]) == text else text
