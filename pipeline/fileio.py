"""Atomic writes: every file is written to a temporary name beside its target, then renamed over it,
so an interrupted write never leaves a half file and never destroys the previous version."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

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


def write_csv(target, header: list[str], rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text(target, buffer.getvalue())


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
