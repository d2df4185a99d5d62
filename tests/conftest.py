import inspect
import os
import re
import shutil
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_data_template(tmp_path_factory) -> Path:
    """A synthesized, prepped and folded data folder, made once per session; copy before changing it."""
    from pipeline.data.folds import make_folds
    from pipeline.data.prep import prep
    from pipeline.data.synth import synthesize

    root = tmp_path_factory.mktemp("template")
    synthesize(root / "data", n_train=90, n_test=30, seed=3)
    prep(root / "data")
    make_folds(root / "data", root / "folds" / "folds.csv", k=3, seed=42)
    return root


@pytest.fixture
def workdir(tiny_data_template, tmp_path, monkeypatch) -> Path:
    """A fresh project folder (data/, folds/) as the current directory."""
    shutil.copytree(tiny_data_template, tmp_path / "project")
    monkeypatch.chdir(tmp_path / "project")
    return tmp_path / "project"


# A test is `slow` when it (or a fixture it uses) trains a network, runs the whole path, starts processes or a
# browser: `./run.sh test -m "not slow"` is the quick loop, `./run.sh test` (CI) runs everything. Derived from the
# code, so a new training test is marked without anyone remembering to.
SLOW = re.compile(r"\btrain\(|\"train\"|run_variant\(|\bablate\(|\"ablate\"|\"run\"|torch\.distributed\.run|sync_playwright|run\.sh|"
                  r"train_fold\(|make_pseudo\(|export_bundle\(|trained_run|bench_\w+\.run\(|gpu_check\.run\(|plasticity_study\.study\(")


def _sources(item) -> str:
    functions = [item.function]
    for definitions in item._fixtureinfo.name2fixturedefs.values():
        functions += [definition.func for definition in definitions]
    texts = []
    for function in functions:
        try:
            texts.append(inspect.getsource(function))
        except (OSError, TypeError):
            pass
    return "\n".join(texts)


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW.search(_sources(item)):
            item.add_marker(pytest.mark.slow)
