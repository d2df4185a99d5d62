"""The bundle's fold ensemble as one ONNX graph, and a runner that predicts tiles with onnxruntime exactly as
`Bundle.predict_tiles` does with torch (same input preparation, TTA views and geometry; the graph averages the
models' sigmoid outputs).

Graph: input `input` (batch, channels, S, S) float32, the network input (grey normalised as in training, padded
or resized to S = data.input_size, extra channels when the model has them); outputs `mask` (batch, 1, S, S),
the mean mask probability, and, with an empty-mask head, `empty` (batch,), the mean P(empty). The plastic head
exports its inference path with the trace as trained (frozen); `inference_plasticity: adapt`, whose trace
learns image after image, cannot be a fixed graph and is refused."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch

from pipeline.data.dataset import batch_inputs
from pipeline.errors import PipelineError
from pipeline.fileio import atomic_path
from pipeline.models.factory import build_model
from pipeline.models.predict import view_inputs, view_probs

OPSET = 18


class EnsembleGraph(torch.nn.Module):
    def __init__(self, models: list[torch.nn.Module], has_empty: bool):
        super().__init__()
        self.models = torch.nn.ModuleList(models)
        self.has_empty = has_empty

    def forward(self, inputs: torch.Tensor):
        masks, empties = [], []
        for model in self.models:
            logits, labels = model(inputs)
            masks.append(torch.sigmoid(logits.float()))
            if self.has_empty:
                empties.append(torch.sigmoid(labels.float()))
        mask = torch.stack(masks).mean(0)
        return (mask, torch.stack(empties).mean(0)) if self.has_empty else mask


def exportable(bundle) -> None:
    head = bundle.cfg.model.head
    if head.rule != "none" and head.inference_plasticity == "adapt":
        raise PipelineError("export --onnx: model.head.inference_plasticity adapt lets the trace learn image after image at inference, "
                            "which a fixed ONNX graph cannot do; export without --onnx (torch predicts it) or train with inference_plasticity frozen")


def export_onnx(bundle, target: Path) -> Path:
    """Write the ensemble graph of `bundle` to `target` (onnxscript's exporter, opset 18)."""
    exportable(bundle)
    models = []
    for state in bundle.states:
        model = build_model(bundle.cfg).eval()
        model.load_state_dict(state)
        models.append(model)
    has_empty = models[0].unet.classification_head is not None
    graph = EnsembleGraph(models, has_empty).eval()
    size = bundle.cfg.data.input_size
    example = batch_inputs(np.zeros((2, 101, 101), np.uint8), np.zeros(2, np.float32), bundle.cfg.data)
    assert example.shape[-1] == size
    with atomic_path(target) as tmp, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's notes (a head attribute set while tracing) are not errors here
        with torch.no_grad():
            torch.onnx.export(graph, (example,), str(tmp), input_names=["input"], output_names=["mask", "empty"] if has_empty else ["mask"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, opset_version=OPSET, external_data=False)
    return target


class OnnxRunner:
    """`predict_tiles` of a bundle through its ONNX graph with onnxruntime (CPU)."""

    def __init__(self, bundle, path: Path, threads: int | None = None):
        try:
            import onnxruntime
        except ImportError:
            raise PipelineError("--runtime onnx needs onnxruntime: pip install onnxruntime (it is in requirements.txt)") from None
        if not Path(path).is_file():
            raise PipelineError(f"{path} is missing: export the bundle with --onnx first (python -m pipeline export --run NAME --out DIR --onnx)")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.bundle, self.cfg, self.post = bundle, bundle.cfg, bundle.post

    def predict_tiles(self, tiles: np.ndarray, depth: float = 0.0, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        cfg, views = self.bundle.cfg, self.bundle.views
        batch_size = batch_size or cfg.infer.batch_size
        depths = np.full(len(tiles), depth, np.float32)
        probs = np.zeros(tiles.shape, np.float32)
        empty = None
        for start in range(0, len(tiles), batch_size):
            stop = start + batch_size
            total, total_empty = 0.0, 0.0
            for view in views:
                inputs = view_inputs(tiles[start:stop], depths[start:stop], cfg, view).numpy()
                outputs = self.session.run(None, {"input": inputs})
                total = total + view_probs(torch.from_numpy(outputs[0]), cfg, view).numpy()
                if len(outputs) > 1:
                    total_empty = total_empty + outputs[1]
            probs[start:stop] = total / len(views)
            if not isinstance(total_empty, float):
                empty = np.zeros(len(tiles), np.float32) if empty is None else empty
                empty[start:stop] = total_empty / len(views)
        return probs, empty
