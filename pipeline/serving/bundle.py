"""A trained run as one self-describing folder that predicts without the run, the data or the training code:

    MODEL/bundle.json                 format, code version, resolved config, post-processing, TTA views,
                                      input normalisation, the weight files (and the ONNX graph when exported)
    MODEL/weights/fold_K[_name].safetensors   the state dict of each checkpoint infer ensembles

`export_bundle(run_dir, out)` writes it from a finished run (after `infer`, whose OOF-tuned post-processing it
carries); `load_bundle(path)` reads it back; `Bundle.predict_tiles` is the fold ensemble with the run's TTA on
101x101 tiles."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pipeline.config import Config, config_from_dict, to_dict
from pipeline.rundir import RunDir
from pipeline.data.dataset import PIXEL_MEAN, PIXEL_STD
from pipeline.devices import choose_device
from pipeline.errors import PipelineError
from pipeline.fileio import atomic_path, write_json
from pipeline.inference.postprocess import GATE_OFF
from pipeline.models.factory import build_model
from pipeline.models.predict import predict, tta_views

FORMAT = "plastic-salt-bundle/1"
MANIFEST = "bundle.json"


@dataclasses.dataclass(frozen=True)
class PostProcess:
    """What turns probabilities into masks, tuned on the run's OOF predictions."""

    threshold: float
    min_area: int
    empty_threshold: float | None  # None: the model has no empty-mask head; 1.0: the gate is off

    @property
    def gate(self) -> float:
        return GATE_OFF if self.empty_threshold is None else self.empty_threshold


@dataclasses.dataclass
class Bundle:
    root: Path
    cfg: Config
    post: PostProcess
    states: list[dict[str, torch.Tensor]]
    manifest: dict
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    _model: torch.nn.Module | None = None

    @property
    def views(self) -> list[tuple[str, int]]:
        return tta_views(self.cfg)

    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = build_model(self.cfg).to(self.device).eval()
        return self._model

    def predict_tiles(self, tiles: np.ndarray, depth: float = 0.0, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(mask probabilities (N,101,101) float32, P(empty) (N,) or None): the mean over the bundle's models and
        TTA views for uint8 tiles (N,101,101). Each model predicts from its own saved lifetime trace."""
        if tiles.ndim != 3 or tiles.shape[1:] != (101, 101) or tiles.dtype != np.uint8:
            raise ValueError(f"tiles must be uint8 (N,101,101), got {tiles.dtype} {tiles.shape}")
        model = self.model()
        depths = np.full(len(tiles), depth, np.float32)
        probs, empty = 0.0, 0.0
        for state in self.states:
            model.load_state_dict(state)  # restores the trace too (inference_plasticity: adapt changes it)
            one, one_empty = predict(model, tiles, depths, self.cfg, self.device, self.views, batch_size or self.cfg.infer.batch_size)
            probs = probs + one / len(self.states)
            empty = None if one_empty is None else empty + one_empty / len(self.states)
        return probs, empty


def _weights_name(path: Path) -> str:
    fold = path.parent.name  # fold_K
    return f"{fold}.safetensors" if path.stem == "last" else f"{fold}_{path.stem}.safetensors"


def export_bundle(run_dir: Path, out: Path, force: bool = False, onnx: bool = False) -> dict:
    """Write the bundle of a finished run (trained and inferred) to `out`, with its ONNX graph `model.onnx`
    when `onnx`; returns the manifest (written last, once)."""
    from pipeline.inference.infer import checkpoint_paths
    from pipeline.study.ablate import code_version
    from pipeline.models.checkpoints import load_checkpoint

    run, out = RunDir(run_dir), Path(out)
    run_dir, post_path = run.root, run.postprocess
    if not post_path.exists():
        raise PipelineError(f"{run_dir} has no postprocess.json: run `python -m pipeline infer --run {run.name}` before export")
    if (out / MANIFEST).exists() and not force:
        raise PipelineError(f"{out} already holds a model bundle; pass --force to replace it or choose another --out")
    cfg = run.load_config()
    post = json.loads(post_path.read_text())
    paths = checkpoint_paths(run, cfg)
    weights, states = [], []
    for path in paths:
        state = {k: v.detach().contiguous().clone() for k, v in load_checkpoint(path, cfg)["model"].items()}
        name = f"weights/{_weights_name(path)}"
        with atomic_path(out / name) as tmp:
            save_file(state, str(tmp))
        weights.append(name)
        states.append(state)
    recipe = to_dict(cfg)
    trained_from = recipe["model"]["encoder_weights"]
    recipe["model"]["encoder_weights"] = None  # the bundle's own weights replace any start point
    manifest = {
        "format": FORMAT,
        "run": run_dir.name,
        "code": code_version(),
        "config": recipe,
        "encoder_trained_from": trained_from,
        "postprocess": {"threshold": post["best_threshold"], "min_area": post["best_min_area"],
                        "empty_threshold": post.get("best_empty_threshold")},
        "oof_score": post.get("oof_score"),
        "tta": list(cfg.infer.tta),
        "tta_shift": cfg.infer.tta_shift,  # each view again at this shift (px down and right), 0: none
        "input": {"tile": 101, "dtype": "uint8 grey", "normalisation": f"(x / 255 - {PIXEL_MEAN}) / {PIXEL_STD}",
                  "geometry": f"{'resized' if cfg.data.resize else 'reflect-101 padded'} to {cfg.data.input_size} px",
                  "depth_channel": cfg.data.depth_channel, "coord_channel": cfg.data.coord_channel},
        "weights": weights,
        "onnx": None,
    }
    if onnx:
        from pipeline.serving.onnx_graph import export_onnx

        p = manifest["postprocess"]
        bundle = Bundle(out, config_from_dict(recipe), PostProcess(float(p["threshold"]), int(p["min_area"]), p["empty_threshold"]), states, manifest)
        export_onnx(bundle, out / "model.onnx")
        manifest["onnx"] = "model.onnx"
    write_json(out / MANIFEST, manifest)  # last: marks a complete bundle
    return manifest


def load_bundle(root: Path, device: str = "cpu") -> Bundle:
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise PipelineError(f"{root} is not a model bundle (no {MANIFEST}); make one with `python -m pipeline export --run NAME --out {root}`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path} cannot be read ({error}); export the bundle again") from None
    if manifest.get("format") != FORMAT:
        raise PipelineError(f"{path} is format {manifest.get('format')!r}, this code reads {FORMAT!r}; export the bundle again with this code")
    cfg = config_from_dict(manifest["config"])
    states = []
    for name in manifest["weights"]:
        try:
            states.append(load_file(str(root / name)))
        except (OSError, SafetensorError) as error:
            raise PipelineError(f"{root / name} cannot be read ({error}); export the bundle again") from None
    p = manifest["postprocess"]
    post = PostProcess(float(p["threshold"]), int(p["min_area"]), None if p["empty_threshold"] is None else float(p["empty_threshold"]))
    return Bundle(root, cfg, post, states, manifest, choose_device(device))
