"""A trained run outside the competition: the bundle (export), predict on image folders of any size and on
SEG-Y sections, and the ONNX graph. The bundle must reproduce the run's own predictions and submission."""

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.cli import main
from pipeline.competition.rle import decode
from pipeline.data.synth import make_sample
from pipeline.serving.bundle import load_bundle
from pipeline.serving.tiling import TILE, cut_tiles, predict_section, tile_starts

segyio = pytest.importorskip("segyio")


def cli(capsys, *argv, code=0):
    result = main(list(argv))
    captured = capsys.readouterr()
    assert result == code, captured.err
    return captured.out + captured.err


@pytest.fixture(scope="module")
def project(tiny_data_template, tmp_path_factory):
    """A finished smoke run (trained with an empty-mask head, inferred, submitted) and its bundle."""
    root = tmp_path_factory.mktemp("serving") / "project"
    shutil.copytree(tiny_data_template, root)
    with contextlib.chdir(root):  # the stages read and write relative to the project
        sets = ["--set", "train.epochs=1", "--set", "train.tensorboard=false", "--set", "model.aux_head=true", "--set", "train.folds=[0]"]
        assert main(["train", "--run", "r", "--config", "smoke", *sets]) == 0
        assert main(["infer", "--run", "r"]) == 0
        assert main(["submit", "--run", "r"]) == 0
        assert main(["export", "--run", "r", "--out", "model"]) == 0
    return root


@pytest.fixture
def inside(project, monkeypatch):
    monkeypatch.chdir(project)
    return project


def test_the_bundle_is_self_describing_and_reproduces_the_runs_test_probabilities(inside):
    manifest = json.loads((inside / "model" / "bundle.json").read_text())
    post = json.loads((inside / "runs" / "r" / "postprocess.json").read_text())
    assert manifest["weights"] == ["weights/fold_0.safetensors"] and (inside / "model" / "weights" / "fold_0.safetensors").is_file()
    assert manifest["postprocess"] == {"threshold": post["best_threshold"], "min_area": post["best_min_area"],
                                       "empty_threshold": post["best_empty_threshold"]}
    assert manifest["tta"] == ["none", "hflip"] and manifest["input"]["normalisation"] == "(x / 255 - 0.5) / 0.25"
    assert len(manifest["code"]["code"]) == 16 and manifest["config"]["model"]["aux_head"] is True
    shutil.copytree(inside / "model", inside / "moved-model")  # no run folder, no data folder needed
    bundle = load_bundle(inside / "moved-model")
    test = np.load(inside / "data" / "cache" / "test.npz")
    probs, empty = bundle.predict_tiles(test["images"])
    assert empty is not None and probs.shape == test["images"].shape
    np.testing.assert_allclose(probs, np.load(inside / "runs" / "r" / "test_probs.npy").astype(np.float32), atol=1e-3)


def test_predict_on_a_folder_of_competition_images_gives_the_submissions_masks(inside, capsys):
    ids = pd.read_csv(inside / "runs" / "r" / "test_ids.csv", dtype=str)["id"].tolist()
    folder = inside / "new-images"
    folder.mkdir(exist_ok=True)
    for image_id in ids:  # the competition's PNGs, as a user would copy them (RGB with R = G = B)
        shutil.copy(inside / "data" / "test" / "images" / f"{image_id}.png", folder / f"{image_id}.png")
    out = cli(capsys, "predict", "--model", "model", "--images", "new-images", "--out", "predicted")
    assert f"predict: {len(ids)} images" in out
    predicted = pd.read_csv(inside / "predicted" / "predictions.csv", dtype=str, keep_default_na=False)
    submission = pd.read_csv(next((inside / "submissions").glob("r-*.csv")), dtype=str, keep_default_na=False)
    expected = dict(zip(submission["id"], submission["rle_mask"]))
    assert dict(zip(predicted["id"], predicted["rle_mask"])) == expected  # the same post-processing, exactly
    first = ids[0]
    mask = np.asarray(Image.open(inside / "predicted" / "masks" / f"{first}.png")) > 0
    np.testing.assert_array_equal(mask, decode(expected[first]))
    assert np.asarray(Image.open(inside / "predicted" / "overlays" / f"{first}.png")).shape == (101, 101, 3)


def test_tiles_cover_every_pixel_and_the_last_one_ends_at_the_edge():
    assert tile_starts(101, 25) == [0] and tile_starts(80, 25) == [0]
    assert tile_starts(300, 25) == [0, 76, 152, 199]
    assert tile_starts(202, 0) == [0, 101]


def section_image(height: int, width: int) -> np.ndarray:
    return make_sample(5, 1, has_salt=True, constant=False, size=max(height, width)).image[:height, :width]


def test_a_large_image_equals_its_tiles_where_they_do_not_overlap(inside):
    bundle = load_bundle(inside / "model")
    bundle.post = type(bundle.post)(bundle.post.threshold, bundle.post.min_area, 1.0)  # gate off: compare raw tiles
    image = section_image(250, 300)
    probs, mask = predict_section(bundle, image, overlap=25)
    assert probs.shape == mask.shape == (250, 300)
    tiles, starts, _ = cut_tiles(image, 25)
    alone, _ = bundle.predict_tiles(tiles)
    # rows 0..75 / cols 0..75 belong to the first tile only; the last tile (149, 199) alone owns rows 177.. and
    # cols 253.. (its neighbours start at rows 76 and cols 152, and end at 176 and 252)
    np.testing.assert_allclose(probs[:76, :76], alone[0][:76, :76], atol=1e-6)
    last = starts.index((149, 199))
    np.testing.assert_allclose(probs[177:, 253:], alone[last][177 - 149:, 253 - 199:], atol=1e-6)
    assert not np.allclose(probs[150:176, 200:252], alone[last][1:27, 1:53], atol=1e-6)  # overlaps are blended
    small = section_image(60, 140)  # shorter than a tile: reflect-padded, cropped back
    assert predict_section(bundle, small, overlap=25)[0].shape == (60, 140)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes(b"not a picture"), "is not a readable image"),
    (lambda p: Image.fromarray(np.full((101, 101), 40000, np.uint16)).save(p), "is a 16-bit image; predict reads 8-bit grey"),
    (lambda p: Image.fromarray(np.dstack([np.zeros((101, 101), np.uint8), np.full((101, 101), 9, np.uint8), np.zeros((101, 101), np.uint8)])).save(p),
     "is a colour image"),
])
def test_bad_images_are_one_line_errors_naming_the_file(inside, capsys, tmp_path, make, message):
    make(tmp_path / "bad.png")
    out = cli(capsys, "predict", "--model", "model", "--images", str(tmp_path), "--out", str(tmp_path / "out"), code=2)
    assert f"error: {tmp_path / 'bad.png'} {message}" in out and not (tmp_path / "out").exists()


def test_an_empty_folder_and_a_missing_bundle_are_one_line(inside, capsys, tmp_path):
    out = cli(capsys, "predict", "--model", "model", "--images", str(tmp_path), "--out", "o", code=2)
    assert "holds no PNG, JPEG or TIFF image" in out
    out = cli(capsys, "predict", "--model", str(tmp_path), "--images", "data/test/images", "--out", "o", code=2)
    assert "is not a model bundle (no bundle.json)" in out


def write_line(path: Path, amplitudes: np.ndarray) -> None:
    """A 2-D line: one trace per column, 4 ms samples, CDP numbers in the headers."""
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 1, list(range(0, 4 * amplitudes.shape[0], 4)), amplitudes.shape[1]
    with segyio.create(str(path), spec) as f:
        f.bin.update({segyio.BinField.Interval: 4000})
        for i in range(amplitudes.shape[1]):
            f.header[i] = {segyio.TraceField.CDP: 1000 + i, segyio.TraceField.offset: 1, segyio.TraceField.SourceX: 500 * i}
            f.trace[i] = np.ascontiguousarray(amplitudes[:, i], np.float32)


def test_a_segy_line_round_trips_headers_and_equals_its_tiles(inside, capsys, tmp_path):
    amplitudes = section_image(180, 240).astype(np.float32) - 128.0  # rows = samples (time down), columns = traces
    line = tmp_path / "line.sgy"
    write_line(line, amplitudes)
    out = cli(capsys, "predict", "--model", "model", "--segy", str(line), "--out", str(tmp_path / "out"))
    assert "predict: line of 180 x 240 samples" in out
    bundle = load_bundle(inside / "model")
    from pipeline.serving.sources import to_grey

    expected, _ = predict_section(bundle, to_grey(amplitudes)[0], overlap=25)
    with segyio.open(str(line), ignore_geometry=True) as src, segyio.open(str(tmp_path / "out" / "line_salt_probability.sgy"), ignore_geometry=True) as dst:
        assert dst.tracecount == src.tracecount and list(dst.samples) == list(src.samples)
        assert dst.bin[segyio.BinField.Interval] == 4000 and dst.text[0] == src.text[0]
        for i in (0, 117, 239):
            for field in (segyio.TraceField.CDP, segyio.TraceField.SourceX, segyio.TraceField.offset):
                assert dst.header[i][field] == src.header[i][field]
        written = np.stack([np.asarray(t) for t in dst.trace]).T
    np.testing.assert_allclose(written, expected, atol=1e-6)
    with segyio.open(str(tmp_path / "out" / "line_salt_mask.sgy"), ignore_geometry=True) as mask:
        values = np.unique(np.stack([np.asarray(t) for t in mask.trace]))
    assert set(values.tolist()) <= {0.0, 1.0}
    assert (tmp_path / "out" / "line_section.png").is_file()


def test_a_3d_volume_gives_one_inline_crossline_or_time_slice(inside, capsys, tmp_path):
    cube = np.stack([section_image(120, 110).astype(np.float32) - 128 + k for k in range(3)])  # (inlines, samples, crosslines)
    path = tmp_path / "cube.sgy"
    spec = segyio.spec()
    spec.format, spec.samples, spec.sorting = 5, list(range(120)), segyio.TraceSortingFormat.INLINE_SORTING
    spec.ilines, spec.xlines = [10, 11, 12], list(range(200, 310))
    with segyio.create(str(path), spec) as f:
        trace = 0
        for il_index, il in enumerate(spec.ilines):
            for xl_index, xl in enumerate(spec.xlines):
                f.header[trace] = {segyio.TraceField.INLINE_3D: il, segyio.TraceField.CROSSLINE_3D: xl}
                f.trace[trace] = np.ascontiguousarray(cube[il_index, :, xl_index])
                trace += 1
    cli(capsys, "predict", "--model", "model", "--segy", str(path), "--inline", "11", "--out", str(tmp_path / "out"))
    with segyio.open(str(tmp_path / "out" / "cube_inline11_salt_probability.sgy"), ignore_geometry=True) as out:
        assert out.tracecount == 110 and len(out.samples) == 120
        assert {out.header[i][segyio.TraceField.INLINE_3D] for i in range(110)} == {11}
        assert [out.header[i][segyio.TraceField.CROSSLINE_3D] for i in (0, 109)] == [200, 309]
    assert "crossline of 120 x 3" in cli(capsys, "predict", "--model", "model", "--segy", str(path), "--crossline", "250", "--out", str(tmp_path / "o2"))
    assert "time_slice of 3 x 110" in cli(capsys, "predict", "--model", "model", "--segy", str(path), "--time-slice", "5", "--out", str(tmp_path / "o3"))
    out = cli(capsys, "predict", "--model", "model", "--segy", str(path), "--inline", "99", "--out", str(tmp_path / "o4"), code=2)
    assert "has no inline 99 (inlines 10..12)" in out


def test_onnx_graph_matches_torch_and_predicts_the_same_masks(inside, capsys):
    pytest.importorskip("onnxruntime")
    shutil.rmtree(inside / "model-onnx", ignore_errors=True)
    assert "ONNX graph model.onnx" in cli(capsys, "export", "--run", "r", "--out", "model-onnx", "--onnx")
    from pipeline.serving.onnx_graph import OnnxRunner

    bundle = load_bundle(inside / "model-onnx")
    runner = OnnxRunner(bundle, inside / "model-onnx" / "model.onnx")
    tiles = np.load(inside / "data" / "cache" / "test.npz")["images"][:20]
    torch_probs, torch_empty = bundle.predict_tiles(tiles)
    onnx_probs, onnx_empty = runner.predict_tiles(tiles)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-4)
    np.testing.assert_allclose(onnx_empty, torch_empty, atol=1e-4)
    cli(capsys, "predict", "--model", "model-onnx", "--images", "data/test/images", "--out", "p-onnx", "--runtime", "onnx")
    cli(capsys, "predict", "--model", "model-onnx", "--images", "data/test/images", "--out", "p-torch")
    onnx_rows = pd.read_csv(inside / "p-onnx" / "predictions.csv", dtype=str, keep_default_na=False)
    torch_rows = pd.read_csv(inside / "p-torch" / "predictions.csv", dtype=str, keep_default_na=False)
    same = (onnx_rows["rle_mask"] == torch_rows["rle_mask"]).mean()
    assert same >= 0.95  # a pixel exactly at the threshold may flip between runtimes; almost all masks agree


def test_onnx_refuses_a_trace_that_learns_at_inference(inside, capsys):
    from pipeline.serving.onnx_graph import exportable

    bundle = load_bundle(inside / "model")
    bundle.cfg.model.head.inference_plasticity = "adapt"
    with pytest.raises(Exception, match="inference_plasticity adapt .* a fixed ONNX graph cannot do"):
        exportable(bundle)
    out = cli(capsys, "predict", "--model", "model", "--images", "data/test/images", "--out", "x", "--runtime", "onnx", code=2)
    assert "has no ONNX graph; export it with" in out
