"""`predict`: a model bundle on new data, without the competition layout.

Image folder (`--images DIR`): every PNG/JPEG/TIFF, any size, 8-bit grey. 101x101 images get exactly the
competition's post-processing (threshold, minimum area per image, empty gate, constant images empty); other
sizes are tiled (pipeline/serving/tiling.py). Writes OUT/masks/NAME.png (0/255), OUT/probabilities/NAME.png
(P(salt) x 255), OUT/overlays/NAME.png (the image with the salt outline in red) and OUT/predictions.csv
(id,height,width,rle_mask; the competition's RLE: 1-indexed, column-major).

SEG-Y (`--segy FILE`, optionally `--inline N` / `--crossline N` / `--time-slice N`): the section scaled to grey
(pipeline/serving/sources.py), tiled, predicted, and written back as OUT/STEM_salt_probability.sgy and
OUT/STEM_salt_mask.sgy with the input's headers, plus OUT/STEM_section.png with the salt outline."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from pipeline.competition.rle import encode
from pipeline.errors import PipelineError
from pipeline.fileio import atomic_path, write_json, write_table
from pipeline.inference.postprocess import to_masks
from pipeline.serving.bundle import load_bundle
from pipeline.serving.sources import image_files, read_grey, read_segy, to_grey, write_segy_like
from pipeline.serving.tiling import TILE, predict_section


def predictor(model_dir: Path, runtime: str = "torch", device: str = "cpu"):
    """The bundle (torch) or its ONNX runner (onnxruntime); both have `predict_tiles` and `post`."""
    bundle = load_bundle(model_dir, device)
    if runtime == "torch":
        return bundle
    if runtime == "onnx":
        from pipeline.serving.onnx_graph import OnnxRunner

        if not bundle.manifest.get("onnx"):
            raise PipelineError(f"{model_dir} has no ONNX graph; export it with `python -m pipeline export --run NAME --out {model_dir} --onnx`")
        return OnnxRunner(bundle, Path(model_dir) / bundle.manifest["onnx"])
    raise PipelineError(f"--runtime must be torch or onnx, got {runtime!r}")


def _save_png(target: Path, array: np.ndarray) -> None:
    with atomic_path(target) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGB picture of a grey image with the mask's outline in red."""
    rgb = np.repeat(image[..., None], 3, axis=2)
    edge = mask & ~ndimage.binary_erosion(mask, border_value=0)
    rgb[edge] = (255, 0, 0)
    return rgb


def predict_image(model, image: np.ndarray, overlap: int, depth: float) -> tuple[np.ndarray, np.ndarray]:
    """(P(salt) float32, mask bool) of one grey image; 101x101 exactly as in the competition."""
    if image.shape == (TILE, TILE):
        probs, empty = model.predict_tiles(image[None], depth)
        post = model.post
        constant = np.array([image.min() == image.max()])
        mask = to_masks(probs, post.threshold, post.min_area, constant, empty, post.gate)  # no empty head: no gate
        return probs[0], mask[0]
    return predict_section(model, image, overlap, depth)


def _depth(model, depth: float | None) -> float:
    if model.cfg.data.depth_channel:
        if depth is None:
            raise PipelineError("this model reads a depth channel: pass --depth Z (the depth of the images, as in depths.csv)")
        return float(depth)
    return 0.0 if depth is None else float(depth)


def predict_folder(model_dir: Path, images: Path, out: Path, runtime: str = "torch", overlap: int = 25, depth: float | None = None) -> dict:
    files = image_files(images)
    grey = [read_grey(path) for path in files]  # every file checked before anything is written
    model = predictor(model_dir, runtime)
    z = _depth(model, depth)
    out = Path(out)
    rows = []
    started = time.perf_counter()
    for path, image in zip(files, grey):
        probs, mask = predict_image(model, image, overlap, z)
        _save_png(out / "masks" / f"{path.stem}.png", mask.astype(np.uint8) * 255)
        _save_png(out / "probabilities" / f"{path.stem}.png", np.round(probs * 255).astype(np.uint8))
        _save_png(out / "overlays" / f"{path.stem}.png", overlay(image, mask))
        rows.append({"id": path.stem, "height": image.shape[0], "width": image.shape[1], "rle_mask": encode(mask)})
    seconds = time.perf_counter() - started
    write_table(out / "predictions.csv", pd.DataFrame(rows, columns=["id", "height", "width", "rle_mask"]))
    summary = {"images": len(files), "salt_images": sum(bool(r["rle_mask"]) for r in rows), "seconds": seconds, "runtime": runtime,
               "model": str(model_dir), "out": str(out)}
    write_json(out / "summary.json", summary)
    return summary


def predict_segy(model_dir: Path, segy: Path, out: Path, runtime: str = "torch", overlap: int = 25, depth: float | None = None,
                 inline: int | None = None, crossline: int | None = None, time_slice: int | None = None) -> dict:
    section, where = read_segy(segy, inline, crossline, time_slice)
    if section.size == 0:
        raise PipelineError(f"{segy} holds no traces")
    grey, clip = to_grey(section)
    model = predictor(model_dir, runtime)
    started = time.perf_counter()
    probs, mask = predict_section(model, grey, overlap, _depth(model, depth))
    seconds = time.perf_counter() - started
    out = Path(out)
    stem = Path(segy).stem + ("" if where["kind"] == "line" else f"_{where['kind']}{where['number']}")
    write_segy_like(segy, out / f"{stem}_salt_probability.sgy", probs, where)
    write_segy_like(segy, out / f"{stem}_salt_mask.sgy", mask.astype(np.float32), where)
    _save_png(out / f"{stem}_section.png", overlay(grey, mask))
    summary = {"segy": str(segy), "kind": where["kind"], "shape": list(section.shape), "clip_amplitude": clip,
               "salt_fraction": float(mask.mean()), "seconds": seconds, "runtime": runtime, "out": str(out)}
    write_json(out / f"{stem}_summary.json", summary)
    return summary
