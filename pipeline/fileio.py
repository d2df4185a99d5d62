"""Atomic writes: every file is written to a temporary name beside its target, then renamed over it,
so an interrupted write never leaves a half file and never destroys the previous version. Tables are read
and written with pandas, as text: ids stay strings and an empty RLE stays \"\"."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once at import: mkstemp's 0600 is replaced by the usual 0666 & ~umask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; on success rename it over `target`, on failure delete it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(target, data: bytes) -> None:
    with atomic_path(target) as tmp:
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
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


class PipelineError(RuntimeError):
    """An error a user can fix: the message says what is wrong, where, and what to do."""
