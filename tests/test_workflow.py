"""The pipeline path, written once (pipeline/workflow.py): what ./run.sh runs, end to end on a tiny data set."""

import json
from pathlib import Path

from pipeline.cli import main
from pipeline.rundir import RunDir
from pipeline.workflow import Variant, run_variant


def test_run_stage_goes_from_an_empty_folder_to_a_scored_submission_and_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--data", "data", "--preset", "smoke", "--set", "train.epochs=1;train.folds=[0]", "--demo-train", "40", "--demo-test", "12"]
    assert main(argv) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("== synth == data holds no train.csv") for line in lines)
    assert lines[-2].startswith("local test score 0.") and lines[-1].startswith("submission: submissions/smoke-")
    summary = json.loads(RunDir.named("smoke").summary.read_text())
    assert f"local test score {summary['test']['score']:.4f}" == lines[-2]  # the number summary.json keeps
    assert set(summary["stage_seconds"]) == {"synth", "prep", "folds", "train", "infer", "submit", "evaluate", "total"}
    assert (tmp_path / "runs" / "smoke" / "report" / "index.html").exists()
    assert main(argv) == 0  # again: everything up to date, the same submission, nothing trained
    again = capsys.readouterr().out
    assert "test probabilities up to date" in again and "fold 0: already finished" in again and again.splitlines()[-1] == lines[-1]


def test_a_variant_is_trained_inferred_submitted_and_scored(workdir):
    outcome = run_variant(Variant("smoke", ("train.epochs=1",)), RunDir(workdir / "runs" / "v"), folds=[0])
    assert outcome.submission.parent == workdir / "runs" / "v" / "submissions"
    assert 0.0 <= outcome.test_score <= 1.0 and len(outcome.test_result["scores"]) == 30
    assert 0.0 <= outcome.oof_score_untuned <= 1.0 and outcome.postprocess["folds"] == [0]
    assert set(outcome.seconds) == {"train", "infer", "submit", "evaluate"}
    assert Path(outcome.run.postprocess).exists()


def test_the_main_job_splits_the_data_into_the_presets_number_of_folds_beside_the_five_fold_split(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--data", "data", "--preset", "smoke", "--demo-train", "40", "--demo-test", "12", "--set"]
    assert main([*argv, "data.folds=10;train.epochs=1;train.folds=[0]"]) == 0, capsys.readouterr().err
    assert "== folds == 40 ids in 10 folds -> folds/folds-k10.csv" in capsys.readouterr().out.splitlines()
    assert not (tmp_path / "folds" / "folds.csv").exists()
    oof_ids = (tmp_path / "runs" / "smoke" / "fold_0" / "oof_ids.csv").read_text().split()
    assert len(oof_ids) == 1 + 4  # header + a tenth of 40: fold 0 trained on the other 36
    ten = (tmp_path / "folds" / "folds-k10.csv").read_bytes()
    assert main([*argv, "train.epochs=1;train.folds=[0]", "--run", "five"]) == 0, capsys.readouterr().err
    assert "== folds == 40 ids in 5 folds -> folds/folds.csv" in capsys.readouterr().out.splitlines()
    assert (tmp_path / "folds" / "folds-k10.csv").read_bytes() == ten  # the other preset's split is left as it was
    assert len((tmp_path / "runs" / "five" / "fold_0" / "oof_ids.csv").read_text().split()) == 1 + 8
