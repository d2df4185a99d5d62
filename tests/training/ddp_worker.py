"""Run under torchrun by the DDP tests: train fold 0 of the smoke preset and dump, per rank and epoch,
the full state (parameters and buffers) and the training indices this rank was given."""

import sys
from pathlib import Path

import torch

from pipeline.config import load_config
from pipeline.training import trainer


def main() -> None:
    run_dir, overrides = Path(sys.argv[1]), sys.argv[2:]
    cfg = load_config("smoke", overrides)

    def dump(training, row):
        indices = list(iter(training.loader.sampler))  # the sampler still holds this epoch's seed
        state = {key: value.detach().cpu().clone() for key, value in training.model.state_dict().items()}
        torch.save({"state": state, "indices": indices}, run_dir / f"rank{training.ctx.rank}_epoch{row['epoch']}.pt")

    trainer.train(cfg, run_dir, folds=[0], callbacks=(dump,))


if __name__ == "__main__":
    main()
