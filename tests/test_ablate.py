import csv

from pipeline.cli import main


def test_ablation_table_from_the_stages(workdir, capsys):
    code = main(["ablate", "--config", "smoke", "--heads", "none,oja,original-rows", "--seeds", "2", "--fold", "0",
                 "--set", "train.epochs=1", "--out", "runs/abl"])
    assert code == 0, capsys.readouterr().err
    with open(workdir / "runs" / "abl" / "ablation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["head"] for r in rows] == ["none", "oja", "original-rows"]
    for row in rows:
        assert row["runs"] == "2" and 0 <= float(row["oof_mean"]) <= 1 and 0 <= float(row["test_mean"]) <= 1
    assert int(rows[2]["parameters"]) > int(rows[0]["parameters"])  # the rows design adds an N x N matrix
    assert (workdir / "runs" / "abl" / "none-seed1" / "fold_0" / "best.pt").exists()
    assert "| original-rows | 2 |" in (workdir / "runs" / "abl" / "ablation.md").read_text()
    assert (workdir / "runs" / "abl" / "ablation.png").stat().st_size > 1000
