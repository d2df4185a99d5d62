import json

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.study.ablate import code_version


def test_ablation_compares_heads_in_pairs_on_the_same_images_and_stamps_the_code(workdir, capsys):
    args = ["ablate", "--config", "smoke", "--heads", "none,frozen,oja", "--seeds", "2", "--fold", "0",
            "--set", "train.epochs=1", "--set", "train.tensorboard=false", "--out", "runs/abl"]
    assert main(args) == 0, capsys.readouterr().err
    out = workdir / "runs" / "abl"
    printed = capsys.readouterr().out
    assert "./run.sh ablate --config gpu-full --heads none,frozen,oja --seeds 5" in printed
    rows = pd.read_csv(out / "ablation.csv")
    assert rows["head"].tolist() == ["none", "frozen", "oja"] and (rows["runs"] == 2).all()
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert list(zip(comparisons["head"], comparisons["reference"])) == [("oja", "frozen"), ("frozen", "none")]
    # the per-image difference is recomputed from the per-image scores: same images, mean over the two seeds
    images = pd.read_csv(out / "image_scores.csv", dtype={"id": str})
    assert set(images.groupby(["head", "seed"]).size()) == {30}  # every head and seed scored on the 30 test images
    wide = images.pivot_table(index=["seed", "id"], columns="head", values="score")
    for row, (head, reference) in enumerate([("oja", "frozen"), ("frozen", "none")]):
        expected = (wide[head] - wide[reference]).groupby(level="id").mean().mean()
        assert abs(comparisons.loc[row, "image_mean"] - expected) < 1e-12
    assert comparisons.loc[0, "image_ci_low"] <= comparisons.loc[0, "image_mean"] <= comparisons.loc[0, "image_ci_high"]
    assert (comparisons["image_p_holm"] >= comparisons["image_p"]).all()
    runs = pd.read_csv(out / "runs.csv", dtype={"code": str})
    assert runs["code"].nunique() == 1 and (runs["scored_on"] == "test").all()
    stamp = json.loads((out / "oja-seed1" / "provenance.json").read_text())
    assert stamp["config"]["model"]["head"]["rule"] == "oja" and stamp["version"]["code"] == runs["code"][0]
    assert stamp["version"] == code_version()  # nothing changed the package since
    assert "| oja - frozen | " in (out / "ablation.md").read_text() and (out / "ablation.png").stat().st_size > 1000
    # a run stamped with other code (recorded in runs.csv, or in its folder when the table is gone) is not
    # tabulated with the rest unless asked
    runs.loc[0, "code"] = "0123456789abcdef"
    runs.to_csv(out / "runs.csv", index=False)
    assert main(args) == 2 and "different code (source hashes 0123456789abcdef, " in capsys.readouterr().err
    (out / "runs.csv").unlink()
    (out / "none-seed0" / "provenance.json").write_text(json.dumps({**stamp, "version": {"code": "0123456789abcdef", "commit": "x"}}))
    assert main(args) == 2 and "different code (source hashes 0123456789abcdef, " in capsys.readouterr().err
    assert main(args + ["--allow-mixed-code"]) == 0


def test_paired_comparison_arithmetic_by_hand():
    from pipeline.study.ablate import compare

    base = {"seed0": [1.0, 0.5, 0.6, 0.0], "seed1": [1.0, 0.4, 0.7, 0.2]}
    delta = {"seed0": [0.0, 0.2, 0.0, -0.1], "seed1": [0.2, 0.0, 0.0, 0.1]}  # per image, mean over seeds: 0.1, 0.1, 0, 0
    frames, results = [], []
    for seed in (0, 1):
        b = np.array(base[f"seed{seed}"])
        a = b + np.array(delta[f"seed{seed}"])
        for head, scores in (("hebb", a), ("frozen", b)):
            frames.append(pd.DataFrame({"id": list("wxyz"), "score": scores, "coverage_class": [0, 2, 5, 0], "head": head, "seed": seed}))
            results.append({"head": head, "seed": seed, "test_metric": float(scores.mean()), "oof_metric": 0.0})
    row = compare(results, pd.concat(frames), [("hebb", "frozen")], resamples=2000)[0]
    assert row["image_mean"] == pytest.approx(0.05) and row["image_images"] == 4
    # per seed: +0.025 and +0.075; paired t = 0.05 / (0.0354 / sqrt 2) = 2.0 on 1 degree of freedom
    assert row["seed_mean"] == pytest.approx(0.05) and row["seed_better"] == 2 and row["seed_t_p"] == pytest.approx(0.2952, abs=1e-4)
    assert (row["empty_mean"], row["empty_images"]) == (pytest.approx(0.05), 2)  # images w, z
    assert (row["small_mean"], row["small_images"]) == (pytest.approx(0.1), 1)  # image x
    assert (row["large_mean"], row["large_images"]) == (pytest.approx(0.0), 1)  # image y
    assert row["image_p_holm"] == row["image_p"]  # one comparison: Holm changes nothing


def test_the_code_stamp_follows_the_package_source_not_the_docs(tmp_path):
    (tmp_path / "pipeline" / "configs").mkdir(parents=True)
    (tmp_path / "pipeline" / "rules.py").write_text("ETA = 0.01\n")
    (tmp_path / "pipeline" / "configs" / "p.yaml").write_text("a: 1\n")
    (tmp_path / "README.md").write_text("old words\n")
    first = code_version(tmp_path)
    assert first["commit"] == "unknown"  # not a git checkout
    (tmp_path / "README.md").write_text("new words\n")
    assert code_version(tmp_path) == first
    (tmp_path / "pipeline" / "configs" / "p.yaml").write_text("a: 2\n")
    second = code_version(tmp_path)
    assert second["code"] != first["code"]
    (tmp_path / "pipeline" / "rules.py").write_text("ETA = 0.02\n")
    assert code_version(tmp_path)["code"] not in (first["code"], second["code"])


def test_without_test_truth_the_ablation_compares_oof_images(workdir, capsys):
    (workdir / "data" / "test_truth.csv").unlink()  # real competition data: no truth for the test images
    args = ["ablate", "--config", "smoke", "--heads", "frozen,hebb", "--seeds", "1", "--fold", "0",
            "--set", "train.epochs=1", "--set", "train.tensorboard=false", "--out", "runs/real"]
    assert main(args) == 0, capsys.readouterr().err
    runs = pd.read_csv(workdir / "runs" / "real" / "runs.csv")
    assert (runs["scored_on"] == "oof").all() and runs["test_metric"].isna().all()
    images = pd.read_csv(workdir / "runs" / "real" / "image_scores.csv", dtype={"id": str})
    assert set(images.groupby("head").size()) == {30}  # fold 0's 30 validation images, the same for both heads
    assert "OOF images, threshold 0.5" in (workdir / "runs" / "real" / "ablation.md").read_text()


def test_comparison_pairs_isolate_plasticity_and_the_inference_trace():
    from pipeline.study.ablate import HEADS, comparison_pairs

    heads = ["none", "frozen", "hebb", "oja", "lifetime", "lifetime-adapt"]
    assert comparison_pairs(heads) == [("hebb", "frozen"), ("oja", "frozen"), ("lifetime", "frozen"), ("lifetime-adapt", "lifetime"),
                                       ("oja", "hebb"), ("frozen", "none")]
    assert comparison_pairs(["none", "hebb", "lifetime-adapt"]) == [("hebb", "none"), ("lifetime-adapt", "none")]
    # the original Plastic-UNet against its own batch-1 control (not frozen at batch 16) and against hebb
    assert comparison_pairs(["frozen", "hebb", "original-frozen", "original"]) == [("hebb", "frozen"), ("original", "original-frozen"),
                                                                                   ("original", "hebb")]
    assert [o for o in HEADS["original-frozen"] if "rule" not in o] == [o for o in HEADS["original"] if "rule" not in o]
    # lifetime and lifetime-adapt differ only at inference: the same training
    assert [o for o in HEADS["lifetime-adapt"] if "inference_plasticity" not in o] == HEADS["lifetime"]


def test_test_time_adaptation_and_other_test_images_score_the_same_trained_weights(workdir, capsys):
    import shutil

    from pipeline.data.holdout import ContrastCurve
    from pipeline.data.layout import Layout, png_bytes, read_image
    from pipeline.fileio import read_table

    gain = Layout(workdir / "data-gain")  # the same training set, the test images at half the contrast
    shutil.copytree(workdir / "data", gain.root, ignore=shutil.ignore_patterns("cache"))
    for image_id in read_table(gain.test_truth, ("id",))["id"]:
        gain.test_image(image_id).write_bytes(png_bytes(np.repeat(ContrastCurve(gain=0.5)(read_image(gain.test_image(image_id)))[..., None], 3, -1)))
    args = ["ablate", "--config", "smoke", "--heads", "none,frozen", "--seeds", "1", "--fold", "0", "--set", "train.epochs=1",
            "--set", "train.tensorboard=false", "--out", "runs/shift", "--test-time", "adabn", "--also-test", f"gain={gain.root}"]
    assert main(args) == 0, capsys.readouterr().err
    out = workdir / "runs" / "shift"
    runs = pd.read_csv(out / "runs.csv")
    assert runs["head"].tolist() == ["none", "none+adabn", "none@gain", "none+adabn@gain", "frozen", "frozen+adabn", "frozen@gain", "frozen+adabn@gain"]
    oof = dict(zip(runs["head"], runs["oof_metric"]))
    assert len({oof[h] for h in ("none", "none+adabn", "none@gain", "none+adabn@gain")}) == 1  # one trained network, the same OOF images
    # the derived runs share the weights (hard links) and leave the trained run's own outputs alone
    assert (out / "none@gain-seed0" / "fold_0" / "last.pt").stat().st_ino == (out / "none-seed0" / "fold_0" / "last.pt").stat().st_ino
    probs = {h: np.load(out / f"{h}-seed0" / "test_probs.npy").astype(np.float32) for h in ("none", "none+adabn", "none@gain", "none+adabn@gain")}
    assert np.abs(probs["none"] - probs["none@gain"]).max() > 1e-3  # other test images
    assert np.abs(probs["none"] - probs["none+adabn"]).max() > 1e-4  # BatchNorm statistics from the test images
    assert json.loads((out / "none+adabn-seed0" / "postprocess.json").read_text())["adapt_bn"] is True
    assert json.loads((out / "none-seed0" / "postprocess.json").read_text())["adapt_bn"] is False
    # without the preset's TTA views: the same weights predicted from the one plain view
    assert main(args[:-4] + ["--test-time", "notta", "--heads", "none", "--out", "runs/notta"]) == 0, capsys.readouterr().err
    assert json.loads((workdir / "runs" / "notta" / "none+notta-seed0" / "postprocess.json").read_text())["tta"] == ["none"]
    assert json.loads((workdir / "runs" / "notta" / "none-seed0" / "postprocess.json").read_text())["tta"] == ["none", "hflip"]
    comparisons = pd.read_csv(out / "comparisons.csv")
    pairs = list(zip(comparisons["head"], comparisons["reference"]))
    assert ("frozen", "none") in pairs and ("frozen@gain", "none@gain") in pairs and ("frozen+adabn@gain", "frozen@gain") in pairs
    assert "--test-time adabn --also-test gain=DIR" in (out / "ablation.md").read_text()
    # a folder with another training set is refused, named
    other = workdir / "data-other"
    shutil.copytree(workdir / "data", other, ignore=shutil.ignore_patterns("cache"))
    changed = sorted((other / "train" / "images").glob("*.png"))[5]  # one training image, one grey level brighter
    changed.write_bytes(png_bytes(np.repeat(np.clip(read_image(changed).astype(int) + 1, 0, 255).astype(np.uint8)[..., None], 3, -1)))
    assert main(args[:-1] + [f"gain={other}"]) == 2
    error = capsys.readouterr().err
    assert "not the same training set as" in error and changed.name in error


def test_test_time_pairs_put_plasticity_against_the_plain_head_adapted():
    from pipeline.study.ablate import derived_variants, test_time_pairs

    assert derived_variants(["adabn"], {"gain": "x"}) == [("adabn", None), (None, "gain"), ("adabn", "gain")]
    pairs = test_time_pairs(["none", "frozen", "hebb"], ["adabn"], [None])
    assert pairs == [("hebb", "frozen"), ("frozen", "none"), ("none+adabn", "none"), ("frozen+adabn", "frozen"), ("hebb+adabn", "hebb"),
                     ("hebb", "none+adabn")]
    # without TTA is not an adaptation: each head against itself only
    assert test_time_pairs(["none", "hebb"], ["notta"], [None]) == [("hebb", "none"), ("none+notta", "none"), ("hebb+notta", "hebb")]


def test_a_study_continues_from_its_recorded_tables_where_the_run_folders_are_gone(workdir, capsys):
    import shutil

    base = ["ablate", "--config", "smoke", "--heads", "none,frozen", "--fold", "0", "--set", "train.epochs=1",
            "--set", "train.tensorboard=false", "--out", "results"]
    assert main(base + ["--seeds", "1", "--runs", "machine1"]) == 0, capsys.readouterr().err
    first = pd.read_csv(workdir / "results" / "runs.csv", dtype={"code": str})
    first_images = pd.read_csv(workdir / "results" / "image_scores.csv", dtype={"id": str})
    # ids hashed (a committed folder of real-data scores), scored again from the same run folders: the same key
    # for the same image, the scores unchanged
    from pipeline.study.ablate import hashed_id

    assert main(base + ["--seeds", "1", "--runs", "machine1", "--out", "hashed", "--hash-ids"]) == 0, capsys.readouterr().err
    hashed = pd.read_csv(workdir / "hashed" / "image_scores.csv", dtype={"id": str})
    assert hashed["id"].tolist() == first_images["id"].map(hashed_id).tolist() and not set(hashed["id"]) & set(first_images["id"])
    assert hashed["score"].tolist() == first_images["score"].tolist()
    shutil.rmtree(workdir / "machine1")  # a new machine: only the committed tables are left
    assert main(base + ["--seeds", "2", "--runs", "machine2"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (workdir / "machine2").iterdir()) == ["frozen-seed1", "none-seed1"]  # seed 0 not trained again
    runs = pd.read_csv(workdir / "results" / "runs.csv", dtype={"code": str})
    assert list(zip(runs["head"], runs["seed"])) == [("none", 0), ("frozen", 0), ("none", 1), ("frozen", 1)]
    pd.testing.assert_frame_equal(runs.iloc[:2].reset_index(drop=True), first)  # the recorded rows, as recorded
    images = pd.read_csv(workdir / "results" / "image_scores.csv", dtype={"id": str})
    pd.testing.assert_frame_equal(images[images["seed"] == 0].reset_index(drop=True), first_images)
    assert pd.read_csv(workdir / "results" / "ablation.csv")["runs"].tolist() == [2, 2]
    # per-image scores missing for a recorded run: refused, named
    images[images["head"] != "frozen"].to_csv(workdir / "results" / "image_scores.csv", index=False)
    assert main(base + ["--seeds", "2", "--runs", "machine2"]) == 2
    assert "no per-image scores for run frozen seed 0" in capsys.readouterr().err


def test_lifetime_adapt_is_read_from_the_lifetime_weights_as_if_trained_alone(workdir, capsys):
    from pipeline.rundir import RunDir
    from pipeline.study.ablate import HEADS
    from pipeline.workflow import Variant, run_variant

    settings = ["--set", "train.epochs=1", "--set", "train.tensorboard=false"]
    assert main(["ablate", "--config", "smoke", "--heads", "none,lifetime-adapt", "--seeds", "1", "--fold", "0", *settings, "--out", "runs/la"]) == 0
    out = workdir / "runs" / "la"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["lifetime-adapt-seed0", "lifetime-seed0", "none-seed0"]
    assert (out / "lifetime-adapt-seed0" / "fold_0" / "last.pt").stat().st_ino == (out / "lifetime-seed0" / "fold_0" / "last.pt").stat().st_ino
    assert RunDir(out / "lifetime-adapt-seed0").load_config().model.head.inference_plasticity == "adapt"
    assert pd.read_csv(out / "runs.csv")["head"].tolist() == ["none", "lifetime-adapt"]  # lifetime trained, not asked for
    # trained on its own, lifetime-adapt predicts the same test probabilities
    alone = run_variant(Variant("smoke", tuple(HEADS["lifetime-adapt"]) + ("train.epochs=1", "train.tensorboard=false", "train.seed=0")),
                        RunDir(workdir / "runs" / "alone"), [0], allow_partial=True)
    read = np.load(out / "lifetime-adapt-seed0" / "test_probs.npy").astype(np.float32)
    trained = np.load(alone.run.root / "test_probs.npy").astype(np.float32)
    assert np.abs(read - trained).max() < 1e-6
    frozen = np.load(out / "lifetime-seed0" / "test_probs.npy").astype(np.float32)  # the same weights, the trace as trained
    assert np.abs(read - frozen).max() > 1e-5
