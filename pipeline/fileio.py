"""Atomic writes: every file is written to a temporary name beside its target, then renamed over it,
so an interrupted write never leaves a half file and never destroys the previous version. Tables are read
and written with pandas, as text: ids stay strings and an empty RLE stays \"\"."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once at import: mkstemp's 0600 is replaced by the usual 0666 & ~umask


# write failures a user fixes on the machine, not in the data: the one-line reason for each
DISK_ERRORS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
               errno.EACCES: "permission denied", errno.EROFS: "read-only file system"}


def disk_error(target, error: OSError, needed: int | None = None, written: int | None = None) -> PipelineError:
    """The one-line error for a write of `target` that failed with one of DISK_ERRORS."""
    target = Path(target)
    reason = DISK_ERRORS[error.errno]
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = f", {shutil.disk_usage(next(p for p in [target, *target.parents] if p.exists())).free / 1e6:.0f} MB free"
        except (OSError, StopIteration):
            free = ""
        size = f"needs ~{max(needed, 1) / 1e6:.1f} MB" if needed is not None else f"needs more than the {(written or 0) / 1e6:.1f} MB written"
        fix = "free space there (or point the stage elsewhere) and rerun it; files already written are intact"
        return PipelineError(f"cannot write {target}: {reason} ({size}{free}); {fix}")
    return PipelineError(f"cannot write {target}: {reason}; make {target.parent} writable (or point the stage elsewhere) and rerun it")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, size: int | None = None):
    """Yield a temporary path beside `target`; on success rename it over `target`, on failure delete it (the
    previous `target` is untouched). A full disk, a quota, no permission or a read-only file system becomes a
    one-line PipelineError naming `target` (`size`: the bytes the write needs, when known)."""
    target = Path(target)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            raise
        written = tmp.stat().st_size if tmp is not None and tmp.exists() else 0
        raise disk_error(target, error, size, written) from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def write_bytes(target, data: bytes) -> None:
    with atomic_path(target, size=len(data)) as tmp:
        tmp.write_bytes(data)


def write_text(target, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_table(target, frame: pd.DataFrame) -> None:
    """A table as CSV (no index column, '\\n' line ends), atomically."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    write_text(target, buffer.getvalue())


def read_table(path, columns: tuple[str, ...] = (), unique: bool = True) -> pd.DataFrame:
    """A CSV as text columns (no NaN: an empty field is ""), values stripped. `columns` must all be present
    (only they are returned when given); with `unique` the first of them may not repeat. Every failure is a
    PipelineError naming the file."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise PipelineError(f"{path}: cannot be read as CSV ({str(error).strip()}); replace it with the original file") from None
    if not set(columns) <= set(frame.columns):
        raise PipelineError(f"{path}: expected columns {','.join(columns)}, found {list(frame.columns) or None}; fix the header")
    if columns:
        frame = frame[list(columns)]
    frame = frame.apply(lambda column: column.str.strip()) if len(frame.columns) else frame
    if unique and columns:
        duplicates = int(frame[columns[0]].duplicated().sum())
        if duplicates:
            raise PipelineError(f"{path}: {duplicates} duplicate {columns[0]} values; each id must appear once")
    return frame


def save_npy(target, array: np.ndarray) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array)


def save_npz(target, **arrays) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def torch_save(target, obj) -> None:
    """torch.save, serialised in memory first: the size is known and a failed write is an OSError (torch's own
    file writer turns a full disk into an opaque RuntimeError)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(target, buffer.getbuffer())


@contextlib.contextmanager
def run_lock(run_dir, stage: str):
    """Hold an exclusive OS lock on `run_dir` (its `.lock` file) while a stage writes into it. The OS drops the
    lock when the process ends, however it ends (kill -9 too), so it never goes stale. A second writer gets a
    one-line PipelineError naming the holder's pid, stage and start time."""
    run_dir = Path(run_dir)
    with one_line_disk_errors(run_dir):
        handle = open(run_dir / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        for _ in range(50):  # the holder writes its name right after locking: wait a moment for it
            handle.seek(0)
            holder = handle.read().strip()
            if holder:
                break
            time.sleep(0.01)
        handle.close()
        raise PipelineError(f"run {run_dir} is in use by {holder or 'another process'}; wait for it to end (or stop it), "
                            "or use another --run") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} ({stage}, started {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
    handle.flush()
    try:
        yield
    finally:
        handle.close()  # releases the lock; the file stays (removing it would race with the next writer)


@contextlib.contextmanager
def one_line_disk_errors(path: Path):
    """Run the block (here: making `path` and the lock file) with DISK_ERRORS as one-line errors."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            raise
        raise disk_error(path, error) from None
