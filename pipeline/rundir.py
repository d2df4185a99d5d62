"""A run folder's contract, as `data/layout.py` is the data folder's: every file a run holds, how its folds are
numbered, and what "trained" and "inferred" mean. Stages ask a `RunDir` for a path; nothing else spells one.

    runs/NAME/
      config.yaml              the resolved config (data paths absolute, so the folder can move)
      .lock                    the writer lock (fileio.run_lock)
      fold_K/                  one per trained fold K
        last.pt                everything resume needs (epoch, optimizer, RNG, EMA)
        best.pt, ema.pt        the model alone (infer.checkpoint best / ema)
        snapshot_C.pt          end of cosine cycle C (optim.schedule restarts; infer.checkpoint snapshots)
        metrics.csv            one row per epoch; tensorboard/ its event files
        oof_ids.csv, oof_choice.json, oof_empty.npy, oof.npy   held-out predictions (oof_choice: checkpoint and TTA);
                               oof.npy last: it marks a finished fold
        ranks.csv              every rank's final weight checksum
      test_probs.npy, test_ids.csv, test_empty.npy, postprocess.json   infer's outputs; postprocess.json last
      summary.json, report/    summary and report
      provenance.json          ablate's stamp of the code that made the run
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.config import Config, config_from_dict, save_config
from pipeline.errors import PipelineError

RUNS = Path("runs")
FOLD_DIR = re.compile(r"fold_(\d+)")


@dataclass(frozen=True)
class FoldDir:
    root: Path
    number: int

    @property
    def last(self) -> Path:
        return self.root / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "best.pt"

    @property
    def ema(self) -> Path:
        return self.root / "ema.pt"

    def snapshot(self, cycle: int) -> Path:
        return self.root / f"snapshot_{cycle}.pt"

    def checkpoints(self, choice: str) -> list[Path]:
        """The checkpoint(s) infer.checkpoint names: last.pt, best.pt, ema.pt, or every snapshot_C.pt in cycle order."""
        if choice == "snapshots":
            return sorted(self.root.glob("snapshot_*.pt"), key=lambda path: int(path.stem.split("_")[1]))
        return [self.root / f"{choice}.pt"]

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def oof(self) -> Path:
        return self.root / "oof.npy"

    @property
    def oof_ids(self) -> Path:
        return self.root / "oof_ids.csv"

    @property
    def oof_empty(self) -> Path:
        return self.root / "oof_empty.npy"

    @property
    def oof_choice(self) -> Path:
        return self.root / "oof_choice.json"  # the checkpoint and TTA views oof.npy was predicted with

    @property
    def ranks(self) -> Path:
        return self.root / "ranks.csv"


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __post_init__(self) -> None:  # RunDir(path) and RunDir(run_dir) both work, so a stage takes either
        object.__setattr__(self, "root", self.root.root if isinstance(self.root, RunDir) else Path(self.root))

    @classmethod
    def named(cls, name: str, runs: Path = RUNS) -> RunDir:
        return cls(Path(runs) / name)

    @property
    def name(self) -> str:
        return self.root.name

    # ----- files of the run -------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def test_probs(self) -> Path:
        return self.root / "test_probs.npy"

    @property
    def test_ids(self) -> Path:
        return self.root / "test_ids.csv"

    @property
    def test_empty(self) -> Path:
        return self.root / "test_empty.npy"

    @property
    def postprocess(self) -> Path:
        return self.root / "postprocess.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance.json"

    # ----- folds ------------------------------------------------------------------------------------
    def fold(self, number: int) -> FoldDir:
        return FoldDir(self.root / f"fold_{number}", number)

    def folds(self) -> list[FoldDir]:
        """The fold folders that exist, by fold number (fold_10 after fold_9)."""
        found = [FoldDir(path, int(match.group(1))) for path in self.root.glob("fold_*")
                 if path.is_dir() and (match := FOLD_DIR.fullmatch(path.name))]
        return sorted(found, key=lambda fold: fold.number)

    def finished_folds(self) -> list[FoldDir]:
        """Folds whose OOF predictions were written (the last thing a fold's training writes)."""
        return [fold for fold in self.folds() if fold.oof.exists()]

    def metrics_files(self) -> list[Path]:
        return [fold.metrics for fold in self.folds() if fold.metrics.exists()]

    # ----- what the stages leave --------------------------------------------------------------------
    @property
    def inference_outputs(self) -> tuple[Path, Path, Path]:
        return self.test_probs, self.test_ids, self.postprocess

    def require_inferred(self) -> None:
        for needed in self.inference_outputs:
            if not needed.exists():
                raise PipelineError(f"{needed} is missing: run `python -m pipeline infer --run {self.name}` first")

    def load_config(self) -> Config:
        """The resolved config the run was trained with (config.yaml)."""
        if not self.config.is_file():
            raise PipelineError(f"{self.config} is missing: no run named '{self.name}' was trained (python -m pipeline train --run NAME)")
        return config_from_dict(yaml.safe_load(self.config.read_text()) or {})

    def save_config(self, cfg: Config) -> None:
        save_config(cfg, self.config)

    def derive(self, dest, cfg: Config) -> RunDir:
        """A run folder at `dest` that shares this run's training under `cfg` (the same weights scored another way:
        other test images, infer.adapt_bn): every fold folder's files hard-linked (copied where a link cannot be
        made), the run's own inference outputs left behind. Writes replace files by renaming, so the source
        run is never changed through a link."""
        derived = RunDir(dest)
        for fold in self.finished_folds():
            target = derived.fold(fold.number).root
            target.mkdir(parents=True, exist_ok=True)
            for path in fold.root.iterdir():
                if path.is_file() and not (target / path.name).exists():
                    try:
                        os.link(path, target / path.name)
                    except OSError:
                        shutil.copy2(path, target / path.name)
        derived.save_config(cfg)
        return derived


def load_run_config(run_dir) -> Config:
    """The resolved config a run was trained with (RUN/config.yaml)."""
    return RunDir(run_dir).load_config()
