"""The Kaggle TGS file layout: where each file lives and how to read it, with errors that name the file."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.errors import PipelineError
from pipeline.fileio import read_table

IMAGE_SIZE = 101


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def train_csv(self) -> Path:
        return self.root / "train.csv"

    @property
    def depths_csv(self) -> Path:
        return self.root / "depths.csv"

    @property
    def sample_submission(self) -> Path:
        return self.root / "sample_submission.csv"

    @property
    def test_truth(self) -> Path:
        return self.root / "test_truth.csv"  # written by `synth` only; the real competition has none

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def train_image(self, image_id: str) -> Path:
        return self.root / "train" / "images" / f"{image_id}.png"

    def train_mask(self, image_id: str) -> Path:
        return self.root / "train" / "masks" / f"{image_id}.png"

    def test_image(self, image_id: str) -> Path:
        return self.root / "test" / "images" / f"{image_id}.png"

    @property
    def test_image_dir(self) -> Path:
        return self.root / "test" / "images"


HOW_TO_FILL = "run `python -m pipeline synth --out {root}` for the synthetic default, or copy the Kaggle files there (see README)"


def check_layout(layout: Layout) -> None:
    """Fail with one clear line when the data folder is missing, empty or incomplete."""
    root = layout.root
    hint = HOW_TO_FILL.format(root=root)
    if not root.is_dir():
        raise PipelineError(f"data folder {root} does not exist: {hint}")
    if not any(root.iterdir()):
        raise PipelineError(f"data folder {root} is empty: {hint}")
    for required in (layout.train_csv, layout.depths_csv, layout.sample_submission):
        if not required.is_file():
            raise PipelineError(f"{required} is missing: {hint}")
    for folder in (root / "train" / "images", root / "train" / "masks", layout.test_image_dir):
        if not folder.is_dir():
            raise PipelineError(f"{folder} is missing: {hint}")


def id_mismatch(expected, found, missing_text: str, extra_text: str) -> str | None:
    """None when the two id collections agree, else counts and a first example of each difference.
    The texts read '{n} ids ... (first: {id})' with {n} the count: e.g. '{n} truth ids are not in the submission'."""
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    parts = [f"{text.format(n=len(ids))} (first: {ids[0]})" for text, ids in ((missing_text, missing), (extra_text, extra)) if ids]
    return "; ".join(parts) or None


def read_depths(path: Path) -> dict[str, float]:
    table = read_table(path, ("id", "z"))
    try:
        return dict(zip(table["id"], table["z"].astype(float)))
    except ValueError as error:
        raise PipelineError(f"{path}: a depth is not a number ({error}); fix the z column") from None


def png_bytes(array: np.ndarray) -> bytes:
    """An array as PNG file contents (8-bit or 16-bit grey, or RGB), to write atomically (fileio.write_bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _open_png(path: Path) -> np.ndarray:
    if not path.is_file():
        raise PipelineError(f"{path} is missing; restore it (or remove its id from the CSV)")
    try:
        with Image.open(path) as image:
            image.load()
            return np.array(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise PipelineError(f"{path} is not a readable PNG ({error}); replace it with an intact copy") from None


def _check_size(array: np.ndarray, path: Path) -> None:
    if array.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
        raise PipelineError(
            f"{path} is {array.shape[1]}x{array.shape[0]}, expected {IMAGE_SIZE}x{IMAGE_SIZE}; "
            "TGS images and masks are all 101x101"
        )


def read_image(path: Path) -> np.ndarray:
    """A 101x101 uint8 grey image from an RGB (R=G=B), RGBA or single-channel PNG."""
    array = _open_png(path)
    _check_size(array, path)
    if array.ndim == 3:
        array = array[..., 0]
    if array.dtype != np.uint8:
        raise PipelineError(f"{path} has {array.dtype} pixels, expected 8-bit; re-export it as an 8-bit PNG")
    return array


def read_mask(path: Path) -> np.ndarray:
    """A 101x101 bool mask: 16-bit {0,65535} for salt, 8-bit zeros for empty; anything > 0 is salt."""
    array = _open_png(path)
    _check_size(array, path)
    if array.ndim == 3:
        array = array[..., 0]
    values = np.unique(array)
    if values.size > 2 or (values.size == 2 and values[0] != 0):
        shown = ", ".join(map(str, values[:6].tolist()))
        raise PipelineError(f"{path} is not a binary mask (values {shown}{'...' if values.size > 6 else ''}); masks hold 0 and one salt value")
    return array > 0


def training_set_difference(a: Layout, b: Layout) -> str | None:
    """Why two data folders do not hold the same training set (train.csv, depths of its ids, every image and
    mask byte for byte), or None when they do: the test images may differ."""
    if not (a.train_csv.is_file() and b.train_csv.is_file()):
        return f"{a.train_csv if not a.train_csv.is_file() else b.train_csv} is missing"
    if a.train_csv.read_bytes() != b.train_csv.read_bytes():
        return f"{a.train_csv} and {b.train_csv} differ"
    ids = [line.split(",", 1)[0] for line in a.train_csv.read_text().splitlines()[1:] if line]
    depth_a, depth_b = read_depths(a.depths_csv), read_depths(b.depths_csv)
    for image_id in ids:
        if depth_a.get(image_id) != depth_b.get(image_id):
            return f"the depth of {image_id} differs between {a.depths_csv} and {b.depths_csv}"
        for path_a, path_b in ((a.train_image(image_id), b.train_image(image_id)), (a.train_mask(image_id), b.train_mask(image_id))):
            if path_a.read_bytes() != path_b.read_bytes():
                return f"{path_a} and {path_b} differ"
    return None
