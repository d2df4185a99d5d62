"""Every stage through the CLI on tiny synthetic data, as a user would run them."""

import csv
import json

import numpy as np

from pipeline.cli import main
from pipeline.competition.rle import decode


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out.strip().splitlines()


def test_every_stage(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run(capsys, "synth", "--out", "data", "--train", "60", "--test", "20", "--seed", "5")
    assert "cached 60 train and 20 test" in run(capsys, "prep", "--data", "data")[-1]
    assert "up to date" in run(capsys, "prep", "--data", "data")[-1]
    run(capsys, "folds", "--data", "data", "--k", "2")
    run(capsys, "train", "--config", "smoke", "--run", "e2e", "--set", "model.head.rule=neuromod")
    note, skipped = run(capsys, "train", "--config", "smoke", "--run", "e2e", "--set", "model.head.rule=neuromod")[:2]
    assert note.startswith("note: ") and "holds 2 folds, the recipe's ./run.sh splits into 5" in note and "skipped" in skipped
    assert "OOF score" in run(capsys, "infer", "--run", "e2e")[-1]
    assert "up to date" in run(capsys, "infer", "--run", "e2e")[-1]
    post = json.loads((tmp_path / "runs" / "e2e" / "postprocess.json").read_text())
    assert {"best_threshold", "best_min_area", "oof_score", "curve"} <= set(post)

    first = run(capsys, "submit", "--run", "e2e")[-1]
    again = run(capsys, "submit", "--run", "e2e")
    assert again[-1] == first and "not written again" in again[0]  # an identical submission is not written twice
    assert len(list((tmp_path / "submissions").glob("e2e-*.csv"))) == 1
    forced = run(capsys, "submit", "--run", "e2e", "--force")[-1]
    assert forced != first and first.startswith("submissions/e2e-") and first.endswith(".csv")
    with open(tmp_path / first, newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(tmp_path / "data" / "sample_submission.csv", newline="") as handle:
        assert [r["id"] for r in rows] == [r["id"] for r in csv.DictReader(handle)]
    masks = np.stack([decode(r["rle_mask"]) for r in rows])
    assert masks.shape == (20, 101, 101)

    score_line = run(capsys, "evaluate", "--submission", first, "--truth", "data/test_truth.csv")[-1]
    assert score_line.startswith("score 0.") and len(score_line) == len("score 0.0000")
    assert run(capsys, "evaluate", "--run", "e2e")[-1] == f"OOF score {post['oof_score']:.4f}"

    run(capsys, "report", "--run", "e2e")
    report = tmp_path / "runs" / "e2e" / "report"
    for name in ("learning_curves.png", "threshold.png", "coverage.png", "best.png", "worst.png", "plastic_head.png"):
        assert (report / name).stat().st_size > 1000, name
        assert name in (report / "index.html").read_text()

    (tmp_path / "timings.txt").write_text("prep 3\ntrain 41\ntotal 60\n")
    run(capsys, "summary", "--run", "e2e", "--submission", first, "--truth", "data/test_truth.csv", "--timings", "timings.txt")
    summary = json.loads((tmp_path / "runs" / "e2e" / "summary.json").read_text())
    assert summary["test"]["score"] == float(score_line.split()[1])  # the same number evaluate printed
    assert summary["oof"]["score_tuned"] == round(post["oof_score"], 4)
    assert summary["stage_seconds"] == {"prep": 3.0, "train": 41.0, "total": 60.0}
    with open(tmp_path / "data" / "test_truth.csv", newline="") as handle:
        empty = [not decode(r["rle_mask"]).any() for r in csv.DictReader(handle)]
    assert summary["test"]["all_empty_score"] == round(float(np.mean(empty)), 4)
    assert summary["folds"]["0"]["head_alpha_abs"]["last_epoch"] > 0  # neuromod (hard clip) has no eta

    # post-processing fixed rather than searched (as cpu-demo does): the report draws no threshold curve
    run(capsys, "infer", "--run", "e2e", "--set", "infer.thresholds=[0.5]", "--set", "infer.min_areas=[0]")
    assert json.loads((tmp_path / "runs" / "e2e" / "postprocess.json").read_text())["best_threshold"] == 0.5
    run(capsys, "report", "--run", "e2e")
    assert "threshold.png" not in (report / "index.html").read_text() and "coverage.png" in (report / "index.html").read_text()


def test_errors_are_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["prep", "--data", "missing"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: data folder missing does not exist")
    assert main(["train", "--config", "smoke", "--set", "train.speed=9"]) == 2
    assert "unknown key 'train.speed'" in capsys.readouterr().err
    assert main(["infer", "--run", "nothing"]) == 2
    assert "no run named 'nothing'" in capsys.readouterr().err
