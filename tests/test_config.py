import pytest

from pipeline.config import load_config, load_run_config, save_config
from pipeline.fileio import PipelineError


@pytest.mark.parametrize("preset", ["smoke", "cpu-demo", "gpu-full"])
def test_presets_load(preset):
    cfg = load_config(preset)
    assert len(cfg.model.decoder_channels) == cfg.model.encoder_depth


def test_overrides_are_typed():
    cfg = load_config("smoke", ["train.epochs=5", "model.head.rule=oja", "infer.tta=[none]", "model.encoder_weights=null"])
    assert cfg.train.epochs == 5 and cfg.model.head.rule == "oja" and cfg.infer.tta == ["none"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochz=3", "unknown key 'train.epochz'"),
        ("model.head.gain=1", "unknown key 'model.head.gain'"),
        ("train.epochs=three", "'train.epochs' must be int"),
        ("model.head.rule=stdp", "'model.head.rule' is 'stdp'; choose one of"),
        ("train", "must look like section.key=value"),
        ("infer.tta=[none, vflip]", "'infer.tta' is 'vflip'; choose one of"),
    ],
)
def test_bad_config_values_name_the_key(override, message):
    with pytest.raises(PipelineError, match=message):
        load_config("smoke", [override])


def test_unknown_key_in_a_yaml_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("train:\n  epochs: 2\n  learning_rate: 0.1\n")
    with pytest.raises(PipelineError, match="unknown key 'train.learning_rate'"):
        load_config(str(tmp_path / "bad.yaml"))


def test_unknown_preset():
    with pytest.raises(PipelineError, match="no file or preset named 'nope'"):
        load_config("nope")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config("cpu-demo", ["model.head.rule=neuromod"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_run_config(tmp_path) == cfg
