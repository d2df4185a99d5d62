"""A first day without surprises: each test is one point of the newcomer review, through the CLI."""

import argparse
import csv
import json

import pytest

from pipeline.cli import build_parser, main


def cli(capsys, *argv, code=0):
    result = main(list(argv))
    captured = capsys.readouterr()
    assert result == code, captured.err
    return captured.out + captured.err


SMOKE_1 = ["--config", "smoke", "--set", "train.epochs=1", "--fold", "0"]


def test_a_failed_start_does_not_block_the_run_name(workdir, capsys):
    out = cli(capsys, "train", "--run", "r", *SMOKE_1, "--data", "nowhere", code=2)
    assert "nowhere/cache/train.npz is missing" in out
    cli(capsys, "train", "--run", "r", "--config", "smoke", "--set", "train.epochs=2", "--fold", "0")  # another config: fine


def test_resume_needs_only_the_run_name_and_a_conflict_names_the_key(workdir, capsys):
    cli(capsys, "train", "--run", "r", *SMOKE_1)
    out = cli(capsys, "train", "--run", "r", "--resume", "--fold", "0")
    assert "using runs/r/config.yaml" in out and "already finished" in out
    out = cli(capsys, "train", "--run", "r", "--resume", "--fold", "0", "--set", "optim.lr=0.1", code=2)
    assert "optim.lr: saved 0.003, now 0.1" in out and "--force" in out
    out = cli(capsys, "train", "--run", "r", "--force", *SMOKE_1)
    assert "--force removed runs/r" in out and "fold 0 epoch 1/1" in out


def test_every_option_of_every_stage_shows_its_help_and_default():
    parser = build_parser()
    stages = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, stage in stages.choices.items():
        text = stage.format_help()
        for action in stage._actions:
            if action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings} has no description"
            if not action.required and action.default not in (None, False):
                assert f"(default: {action.default})" in " ".join(text.split()), f"{name} {action.option_strings}: default not shown"


def test_synth_says_how_much_it_will_write_and_submit_out_must_be_a_folder(workdir, capsys, tmp_path):
    out = cli(capsys, "synth", "--out", str(tmp_path / "d"), "--train", "3", "--test", "2")
    assert out.startswith(f"synth: writing 3 train and 2 test images to {tmp_path / 'd'}")
    cli(capsys, "train", "--run", "r", "--config", "smoke", "--set", "train.epochs=1")
    cli(capsys, "infer", "--run", "r")
    out = cli(capsys, "submit", "--run", "r", "--out", "my.csv", code=2)
    assert "submit --out my.csv must be a folder" in out


def test_images_without_a_row_are_reported_and_refused_unless_allowed(workdir, capsys):
    lines = (workdir / "data" / "train.csv").read_text().splitlines()
    (workdir / "data" / "train.csv").write_text("\n".join(lines[:51]) + "\n")  # header + 50 of 90 rows
    out = cli(capsys, "prep", "--data", "data", code=2)
    assert "40 images in data/train/images have no row in data/train.csv" in out and "--allow-unlisted" in out
    out = cli(capsys, "prep", "--data", "data", "--allow-unlisted")
    assert "cached 50 train" in out and "40 train images without a row" in out


def test_infer_names_its_folds_and_refuses_a_partial_ensemble(workdir, capsys):
    cli(capsys, "train", "--run", "r", *SMOKE_1)
    out = cli(capsys, "infer", "--run", "r", code=2)
    assert "has folds 0 of 3; fold(s) 1, 2 are missing" in out
    out = cli(capsys, "infer", "--run", "r", "--allow-partial")
    assert "ensemble of folds 0 (last.pt each)" in out


def test_evaluate_rejects_extra_columns(workdir, capsys, tmp_path):
    truth = workdir / "data" / "test_truth.csv"
    with open(truth, newline="") as handle:
        rows = list(csv.DictReader(handle))
    extra = tmp_path / "extra.csv"
    extra.write_text("id,rle_mask,confidence\n" + "".join(f"{r['id']},{r['rle_mask']},1\n" for r in rows))
    out = cli(capsys, "evaluate", "--submission", str(extra), "--truth", str(truth), code=2)
    assert "exactly the columns id,rle_mask" in out


def test_report_leads_with_the_local_score_and_the_submission(workdir, capsys):
    cli(capsys, "train", "--run", "r", "--config", "smoke", "--set", "train.epochs=1")
    cli(capsys, "infer", "--run", "r")
    submission = cli(capsys, "submit", "--run", "r").strip().splitlines()[-1]
    cli(capsys, "summary", "--run", "r", "--submission", submission, "--truth", "data/test_truth.csv")
    cli(capsys, "report", "--run", "r")
    page = (workdir / "runs" / "r" / "report" / "index.html").read_text()
    score = json.loads((workdir / "runs" / "r" / "summary.json").read_text())["test"]["score"]
    first_heading = page.split("<h1>")[1].split("</h1>")[0]
    assert first_heading.startswith(f"local test score {score:.4f}") and submission in first_heading


def test_metrics_lr_is_the_rate_of_the_epochs_first_step(workdir, capsys):
    cli(capsys, "train", "--run", "r", "--config", "smoke", "--fold", "0", "--set", "optim.warmup_epochs=1")
    with open(workdir / "runs" / "r" / "fold_0" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    steps = 3  # smoke: max_steps_per_epoch
    assert float(rows[0]["lr"]) == pytest.approx(0.003 * 1 / steps)  # warm-up step 0 of 3 (was: the rate after the last step)


def test_a_folds_train_and_validation_curves_share_a_colour(monkeypatch, tmp_path):
    from pipeline.evaluation import report

    captured = {}
    monkeypatch.setattr(report, "_save", lambda figure, path: captured.setdefault("figure", figure))
    rows = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_metric": 0.1 * e} for e in (1, 2)]
    report.plot_learning_curves({0: rows, 1: rows}, tmp_path / "curves.png")
    left = captured["figure"].axes[0]
    colours = {line.get_label(): line.get_color() for line in left.get_lines()}
    assert colours["fold 0 train"] == colours["fold 0 val"] != colours["fold 1 val"] == colours["fold 1 train"]
