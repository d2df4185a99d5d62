"""Images of any size through a 101 px model: overlapping 101x101 tiles, predicted together, blended back.

Tile starts along an axis of length L >= 101 are 0, stride, 2*stride, ... and L - 101 (the last tile ends at the
edge); an axis shorter than 101 is reflect-padded to 101 and cropped after. Overlaps are blended with weights
that fall linearly from 1 inside the tile to FLOOR at its border over `overlap` pixels, so a pixel covered by one
tile gets exactly that tile's probability and tile borders (where the network sees least context) count less.

Post-processing on a section follows the competition's per tile: a tile the empty gate calls empty, or a
constant tile, contributes probability 0; the blended map is thresholded; salt bodies (connected components)
smaller than `min_area` pixels are removed, the section's analogue of the per-image minimum area."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

TILE = 101
FLOOR = 0.1


def tile_starts(length: int, overlap: int) -> list[int]:
    if not 0 <= overlap < TILE:
        raise ValueError(f"overlap must lie in [0, {TILE}), got {overlap}")
    if length <= TILE:
        return [0]
    stride = TILE - overlap
    starts = list(range(0, length - TILE + 1, stride))
    if starts[-1] != length - TILE:
        starts.append(length - TILE)
    return starts


def tile_weight(overlap: int) -> np.ndarray:
    """(101,101) blending weight: 1 inside, falling linearly to FLOOR at the border over `overlap` pixels."""
    if overlap == 0:
        return np.ones((TILE, TILE), np.float32)
    distance = np.minimum(np.arange(TILE), np.arange(TILE)[::-1]).astype(np.float32)  # pixels to the nearest border
    ramp = np.clip(FLOOR + (1 - FLOOR) * distance / overlap, FLOOR, 1.0)
    return np.minimum(ramp[:, None], ramp[None, :])


def cut_tiles(image: np.ndarray, overlap: int) -> tuple[np.ndarray, list[tuple[int, int]], tuple[int, int]]:
    """uint8 (H,W) -> (tiles (N,101,101), their (row, col) starts, the padded shape)."""
    height, width = image.shape
    padded = np.pad(image, ((0, max(0, TILE - height)), (0, max(0, TILE - width))), mode="reflect" if min(height, width) > 1 else "edge")
    rows, cols = tile_starts(padded.shape[0], overlap), tile_starts(padded.shape[1], overlap)
    starts = [(r, c) for r in rows for c in cols]
    tiles = np.stack([padded[r : r + TILE, c : c + TILE] for r, c in starts])
    return tiles, starts, padded.shape


def blend(tile_probs: np.ndarray, starts: list[tuple[int, int]], padded_shape: tuple[int, int], shape: tuple[int, int], overlap: int) -> np.ndarray:
    """Weighted mean of the tiles' probabilities in the image's geometry, float32 (H,W)."""
    weight = tile_weight(overlap)
    total = np.zeros(padded_shape, np.float64)
    norm = np.zeros(padded_shape, np.float64)
    for probs, (r, c) in zip(tile_probs, starts):
        total[r : r + TILE, c : c + TILE] += probs * weight
        norm[r : r + TILE, c : c + TILE] += weight
    return (total / norm).astype(np.float32)[: shape[0], : shape[1]]


def section_mask(probs: np.ndarray, threshold: float, min_area: int) -> np.ndarray:
    """Threshold, then drop salt bodies (8-connected components) smaller than `min_area` pixels."""
    mask = probs > threshold
    if min_area > 0 and mask.any():
        labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        mask &= sizes[labels] >= min_area
    return mask


def predict_section(bundle, image: np.ndarray, overlap: int = 25, depth: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(salt probability float32 (H,W), mask bool (H,W)) of a uint8 grey image of any size."""
    tiles, starts, padded_shape = cut_tiles(image, overlap)
    probs, empty = bundle.predict_tiles(tiles, depth)
    post = bundle.post
    flat = tiles.reshape(len(tiles), -1)
    silent = flat.min(axis=1) == flat.max(axis=1)  # constant tiles
    if empty is not None:
        silent |= empty > post.gate
    probs[silent] = 0.0
    blended = blend(probs, starts, padded_shape, image.shape, overlap)
    return blended, section_mask(blended, post.threshold, post.min_area)
