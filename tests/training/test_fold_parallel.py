import pytest
import torch

from pipeline.config import load_config
from pipeline.errors import PipelineError
from pipeline.fileio import run_lock
from pipeline.training import trainer
from pipeline.training.fold_parallel import assign, train_in_parallel

SETTINGS = ("train.epochs=1", "train.device=cpu", "train.tensorboard=false")


def test_folds_are_dealt_round_robin_to_at_most_one_worker_each():
    assert assign([0, 1, 2, 3, 4], 2) == [[0, 2, 4], [1, 3]]
    assert assign([3, 1], 4) == [[3], [1]]  # no idle worker
    assert assign([2], 1) == [[2]]


def test_fold_parallel_children_train_each_fold_as_one_process_would(workdir):
    """Two children at once (CPU here, one GPU each on a GPU machine), the parent holding the run's lock: every
    fold's weights equal those of the same folds trained one after the other in one process."""
    args = ["--config", "smoke", "--run", "par", *[part for s in SETTINGS for part in ("--set", s)]]
    (workdir / "runs" / "par").mkdir(parents=True)
    with run_lock(workdir / "runs" / "par", "train"):  # as run_variant and `train` hold it: the children must not need it
        train_in_parallel(args, [0, 1], ["", ""], workdir / "runs" / "par", log=lambda line: None)
    trainer.train(load_config("smoke", list(SETTINGS)), workdir / "runs" / "seq", folds=[0, 1])
    for fold in (0, 1):
        parallel = torch.load(workdir / "runs" / "par" / f"fold_{fold}" / "best.pt", weights_only=False)["model"]
        sequential = torch.load(workdir / "runs" / "seq" / f"fold_{fold}" / "best.pt", weights_only=False)["model"]
        assert parallel.keys() == sequential.keys()
        assert all(torch.equal(parallel[k], sequential[k]) for k in parallel), f"fold {fold} differs"
    assert "fold 0" in (workdir / "runs" / "par" / "fold-parallel-0.log").read_text()
    assert "fold 1" in (workdir / "runs" / "par" / "fold-parallel-1.log").read_text()
    # a child that fails is named, with its log, after the other has ended
    with pytest.raises(PipelineError, match=r"folds 9 on GPU \(none\) exited 2 \(see .*fold-parallel-1.log\)"):
        train_in_parallel(args, [0, 9], ["", ""], workdir / "runs" / "par", log=lambda line: None)


def test_several_gpus_train_one_fold_each_unless_ddp_is_asked_or_one_fold_is_left(workdir, monkeypatch):
    from pipeline import workflow
    from pipeline.rundir import RunDir

    calls = []
    monkeypatch.setattr(workflow, "train_in_parallel", lambda args, folds, devices, run_dir: calls.append(("folds", folds, devices, args)))
    monkeypatch.setattr(workflow, "_train_distributed", lambda variant, run, gpus, folds: calls.append(("ddp", folds, gpus)))
    run = RunDir(workdir / "runs" / "multi")
    run.root.mkdir(parents=True)
    variant = workflow.Variant("smoke", ("train.epochs=1",))
    for overrides, folds in [((), None), ((), [0, 2]), (("train.multi_gpu=ddp",), None), ((), [3])]:
        workflow._train_on_gpus(load_config("smoke", list(overrides)), variant, run, 4, folds, False, {})
    # every fold of the workdir's 3-fold split; the folds asked for; ddp asked; one fold left: ddp
    assert calls == [("folds", [0, 1, 2], ["0", "1", "2", "3"], ["--config", "smoke", "--run", "multi", "--resume", "--set", "train.epochs=1"]),
                     ("folds", [0, 2], ["0", "1", "2", "3"], ["--config", "smoke", "--run", "multi", "--resume", "--set", "train.epochs=1"]),
                     ("ddp", None, 4), ("ddp", [3], 4)]
    assert workflow.multi_gpu_mode(load_config("smoke"), 4) == "one fold per GPU"
    assert workflow.multi_gpu_mode(load_config("smoke", ["train.multi_gpu=ddp"]), 2) == "torchrun DDP, 2 GPUs"
