"""The run folder's contract: fold numbering, recipe vs runtime keys, infer --set, a moved run."""

import json
import shutil

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.errors import PipelineError
from pipeline.inference.infer import infer
from pipeline.rundir import RunDir
from pipeline.training.trainer import train


def smoke(*overrides):
    return load_config("smoke", ["train.epochs=1", *overrides])


def test_folds_are_numbered_as_numbers_and_odd_folders_are_not_folds(tmp_path):
    run = RunDir(tmp_path / "r")
    for name in ("fold_10", "fold_2", "fold_x", "fold_3.bak"):
        (run.root / name).mkdir(parents=True)
    (run.root / "fold_2" / "oof.npy").write_bytes(b"")
    assert [fold.number for fold in run.folds()] == [2, 10]
    assert [fold.number for fold in run.finished_folds()] == [2]
    assert run.fold(10).last == tmp_path / "r" / "fold_10" / "last.pt"
    assert RunDir(run).root == run.root  # a stage takes a path or a RunDir
    for cycle in (10, 2, 0):
        run.fold(2).snapshot(cycle).write_bytes(b"")
    assert [p.name for p in run.fold(2).checkpoints("snapshots")] == ["snapshot_0.pt", "snapshot_2.pt", "snapshot_10.pt"]


def test_runtime_keys_change_on_resume_recipe_keys_are_refused_by_name(workdir, capsys):
    run = RunDir(workdir / "runs" / "r")
    train(smoke(), run.root, folds=[0])
    assert run.load_config().data.data_dir == str(workdir / "data")  # absolute: the folder can move
    train(smoke("train.tensorboard=false", "infer.tta=[none]"), run.root, folds=[0], resume=True)
    saved = run.load_config()
    assert saved.train.tensorboard is False and saved.infer.tta == ["none"]
    assert "continues with new runtime settings: train.tensorboard, infer.tta" in capsys.readouterr().out
    with pytest.raises(PipelineError, match=r"different recipe \(optim.lr: saved 0.003, now 0.1\)"):
        train(smoke("train.tensorboard=false", "infer.tta=[none]", "optim.lr=0.1"), run.root, folds=[0], resume=True)


def test_infer_set_changes_the_prediction_choice_and_redoes_stale_oof(workdir, capsys):
    run = RunDir(workdir / "runs" / "r")
    train(smoke(), run.root, folds=[0])
    first = infer(run.root, allow_partial=True)
    assert first["tta"] == ["none", "hflip"] and "oof_predicted_again" not in first
    oof_before = np.load(run.fold(0).oof)
    assert main(["infer", "--run", "r", "--allow-partial", "--set", "infer.tta=[none]"]) == 0
    post = json.loads(run.postprocess.read_text())
    assert post["tta"] == ["none"] and post["oof_predicted_again"] == [0]
    assert json.loads(run.fold(0).oof_choice.read_text()) == {"checkpoint": "last", "tta": ["none"]}
    assert not np.array_equal(np.load(run.fold(0).oof), oof_before)  # one view instead of two
    assert run.load_config().infer.tta == ["none"]  # later stages (submit, export) see the new choice
    assert main(["infer", "--run", "r", "--set", "model.head.rule=oja"]) == 2
    assert "'model.head.rule' is part of the recipe" in capsys.readouterr().err


def test_a_moved_run_still_infers_from_another_folder(workdir, tmp_path, monkeypatch):
    train(smoke(), workdir / "runs" / "r", folds=[0])
    moved = tmp_path / "elsewhere" / "r"
    shutil.move(workdir / "runs" / "r", moved)
    monkeypatch.chdir(tmp_path)  # relative data paths would now point nowhere
    post = infer(moved, allow_partial=True)
    assert post["folds"] == [0] and RunDir(moved).test_probs.exists()


def test_the_snapshots_a_restarts_schedule_keeps_are_one_infer_set_away(workdir):
    run = RunDir(workdir / "runs" / "s")
    train(load_config("smoke", ["optim.schedule=restarts", "optim.cycles=2", "train.epochs=2"]), run.root, folds=[0])
    snapshots = run.fold(0).checkpoints("snapshots")
    assert snapshots and all(p.name.startswith("snapshot_") for p in snapshots)
    post = infer(run.root, allow_partial=True, overrides=["infer.checkpoint=snapshots"])
    assert post["checkpoint"] == "snapshots" and post["oof_predicted_again"] == [0]
    assert json.loads(run.fold(0).oof_choice.read_text())["checkpoint"] == "snapshots"
