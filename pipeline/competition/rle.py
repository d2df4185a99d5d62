"""Kaggle TGS run-length encoding: 'start length' pairs, 1-indexed, pixels numbered column-major."""

from __future__ import annotations

import numpy as np


def encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (anything > 0 is salt); an empty mask is the empty string."""
    pixels = np.asarray(mask).ravel(order="F") > 0
    padded = np.concatenate(([False], pixels, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])  # alternating run starts and ends (0-indexed)
    if edges.size == 0:
        return ""
    runs = edges.reshape(-1, 2)
    runs[:, 1] -= runs[:, 0]
    runs[:, 0] += 1
    return " ".join(map(str, runs.ravel().tolist()))


def _parse(rle, n_pixels: int, height: int, width: int, image_id: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Validated (starts, ends) of an RLE string, 0-indexed, ends exclusive; None for an empty mask."""
    if rle is None or (isinstance(rle, float) and np.isnan(rle)):
        return None
    text = str(rle).strip()
    if not text:
        return None
    try:
        numbers = np.array(text.split(), dtype=np.int64)
    except (ValueError, OverflowError):
        raise ValueError(f"id {image_id}: RLE holds something that is not an integer: {text[:60]!r}") from None
    if numbers.size % 2:
        raise ValueError(f"id {image_id}: RLE has an odd count of numbers ({numbers.size}); it must be 'start length' pairs")
    starts, lengths = numbers[0::2], numbers[1::2]
    if (starts < 1).any() or (lengths < 1).any():
        raise ValueError(f"id {image_id}: RLE starts and lengths must be positive (starts are 1-indexed)")
    ends = starts + lengths  # one past the last pixel, 1-indexed
    if (starts[1:] < ends[:-1]).any():
        raise ValueError(f"id {image_id}: RLE runs are unsorted or overlap")
    if ends[-1] - 1 > n_pixels:
        raise ValueError(f"id {image_id}: RLE run ends at pixel {ends[-1] - 1}, past the {n_pixels} pixels of a {height}x{width} mask")
    return starts - 1, ends - 1


def _fill(starts: np.ndarray, ends: np.ndarray, n_pixels: int) -> np.ndarray:
    # starts are strictly increasing and so are ends, so each index is hit at most once per statement
    delta = np.zeros(n_pixels + 1, dtype=np.int8)
    delta[starts] += 1
    delta[ends] -= 1
    return np.cumsum(delta[:-1], dtype=np.int8).astype(bool)


def decode(rle: str | float | None, shape: tuple[int, int] = (101, 101), image_id: str = "?") -> np.ndarray:
    """Decode an RLE string into a bool mask of `shape`; malformed strings raise ValueError naming the id."""
    height, width = shape
    runs = _parse(rle, height * width, height, width, image_id)
    if runs is None:
        return np.zeros(shape, dtype=bool)
    return _fill(*runs, height * width).reshape((width, height)).T.copy()


CHUNK = 512  # masks per vectorised block: big enough to amortise numpy calls, small enough to stay in cache


def _encode_block(masks: np.ndarray) -> list[str]:
    n = masks.shape[0]
    n_pixels = masks.shape[1] * masks.shape[2]
    # column-major pixels of each mask after a leading False, so every run has a start and an end edge
    padded = np.zeros((n, n_pixels + 1), dtype=bool)
    padded[:, 1:].reshape(n, masks.shape[2], masks.shape[1])[:] = masks.transpose(0, 2, 1)
    flat = np.append(padded.ravel(), False)
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    owner = edges // (n_pixels + 1)
    numbers = (edges % (n_pixels + 1)).reshape(-1, 2)  # 0-indexed start, 0-indexed end (exclusive)
    numbers[:, 1] -= numbers[:, 0]
    numbers[:, 0] += 1
    texts = list(map(str, numbers.ravel().tolist()))
    bounds = np.searchsorted(owner[0::2], np.arange(n + 1)) * 2
    return [" ".join(texts[bounds[i] : bounds[i + 1]]) for i in range(n)]


def encode_many(masks: np.ndarray) -> list[str]:
    """Encode an (N, H, W) stack in vectorised blocks (the same strings as `encode`)."""
    masks = np.asarray(masks)
    out: list[str] = []
    for start in range(0, masks.shape[0], CHUNK):
        block = masks[start : start + CHUNK]
        out.extend(_encode_block(block if block.dtype == bool else block > 0))
    return out


def decode_many(rles, ids, shape: tuple[int, int] = (101, 101)) -> np.ndarray:
    """Decode a sequence of RLE strings into an (N, H, W) bool stack.

    Each mask is rebuilt as alternating background and salt stretches (gap, run, gap, run, ..., tail),
    so one np.repeat writes every pixel of a block of masks."""
    height, width = shape
    n_pixels = height * width
    out = np.empty((len(rles), height, width), dtype=bool)
    for start in range(0, len(rles), CHUNK):
        stretches, values = [], []
        for rle, image_id in zip(rles[start : start + CHUNK], ids[start : start + CHUNK]):
            runs = _parse(rle, n_pixels, height, width, image_id)
            if runs is None:
                stretches.append(np.array([n_pixels]))
                values.append(np.zeros(1, dtype=bool))
                continue
            starts, ends = runs
            lengths = np.empty(2 * starts.size + 1, dtype=np.int64)
            lengths[0:-1:2] = starts - np.concatenate(([0], ends[:-1]))  # background before each run
            lengths[1::2] = ends - starts
            lengths[-1] = n_pixels - ends[-1]
            stretches.append(lengths)
            flags = np.zeros(lengths.size, dtype=bool)
            flags[1::2] = True
            values.append(flags)
        block = np.repeat(np.concatenate(values), np.concatenate(stretches))
        count = len(stretches)
        out[start : start + count] = block.reshape(count, width, height).transpose(0, 2, 1)
    return out
