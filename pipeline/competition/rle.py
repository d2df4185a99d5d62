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


def decode(rle: str | float | None, shape: tuple[int, int] = (101, 101), image_id: str = "?") -> np.ndarray:
    """Decode an RLE string into a bool mask of `shape`; malformed strings raise ValueError naming the id."""
    if rle is None or (isinstance(rle, float) and np.isnan(rle)):
        rle = ""
    text = str(rle).strip()
    height, width = shape
    n_pixels = height * width
    if not text:
        return np.zeros(shape, dtype=bool)
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
    delta = np.zeros(n_pixels + 1, dtype=np.int32)
    np.add.at(delta, starts - 1, 1)
    np.add.at(delta, ends - 1, -1)
    flat = np.cumsum(delta[:-1]) > 0
    return flat.reshape((width, height)).T.copy()


def encode_many(masks: np.ndarray) -> list[str]:
    """Encode an (N, H, W) stack."""
    return [encode(mask) for mask in masks]


def decode_many(rles, ids, shape: tuple[int, int] = (101, 101)) -> np.ndarray:
    """Decode a sequence of RLE strings into an (N, H, W) bool stack."""
    out = np.zeros((len(rles),) + tuple(shape), dtype=bool)
    for i, (rle, image_id) in enumerate(zip(rles, ids)):
        out[i] = decode(rle, shape, image_id)
    return out
