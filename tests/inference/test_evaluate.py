import csv

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.competition.rle import encode
from pipeline.evaluation.evaluate import evaluate_submission, format_table
from pipeline.fileio import PipelineError, write_csv


def truth_rows(path):
    with open(path, newline="") as handle:
        return [(r["id"], r["rle_mask"]) for r in csv.DictReader(handle)]


def test_truth_against_itself_scores_one(workdir, capsys):
    truth = workdir / "data" / "test_truth.csv"
    assert main(["evaluate", "--submission", str(truth), "--truth", str(truth)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "score 1.0000"


def test_all_empty_submission_scores_the_empty_fraction(workdir):
    truth = workdir / "data" / "test_truth.csv"
    rows = truth_rows(truth)
    write_csv(workdir / "empty.csv", ["id", "rle_mask"], [(i, "") for i, _ in rows])
    result = evaluate_submission(workdir / "empty.csv", truth)
    empty_fraction = np.mean([rle == "" for _, rle in rows])
    assert result["scores"].mean() == pytest.approx(empty_fraction)
    assert format_table(result).splitlines()[-1] == f"score {empty_fraction:.4f}"


def test_a_shifted_mask_scores_by_its_iou(tmp_path):
    mask = np.zeros((101, 101), bool)
    mask[:, :50] = True
    shifted = np.zeros_like(mask)
    shifted[:, 10:50] = True  # IoU 40/50 = 0.8 -> thresholds 0.50..0.75 pass: 0.6
    write_csv(tmp_path / "truth.csv", ["id", "rle_mask"], [("a", encode(mask))])
    write_csv(tmp_path / "sub.csv", ["id", "rle_mask"], [("a", encode(shifted))])
    assert evaluate_submission(tmp_path / "sub.csv", tmp_path / "truth.csv")["scores"].tolist() == [0.6]


def test_id_mismatch_is_a_clear_error(tmp_path):
    write_csv(tmp_path / "truth.csv", ["id", "rle_mask"], [("a", ""), ("b", "")])
    write_csv(tmp_path / "sub.csv", ["id", "rle_mask"], [("a", ""), ("c", "")])
    with pytest.raises(PipelineError, match="1 truth ids are not in the submission \\(first: b\\); 1 submission ids are not in the truth"):
        evaluate_submission(tmp_path / "sub.csv", tmp_path / "truth.csv")


def test_malformed_rle_in_a_submission(tmp_path, capsys):
    write_csv(tmp_path / "truth.csv", ["id", "rle_mask"], [("a", "")])
    write_csv(tmp_path / "sub.csv", ["id", "rle_mask"], [("a", "3 2 1")])
    assert main(["evaluate", "--submission", str(tmp_path / "sub.csv"), "--truth", str(tmp_path / "truth.csv")]) == 2
    assert "sub.csv: id a: RLE has an odd count" in capsys.readouterr().err
