import pytest

from pipeline.config import load_config, save_config
from pipeline.rundir import load_run_config
from pipeline.errors import PipelineError


@pytest.mark.parametrize("preset", ["smoke", "cpu-tiny", "cpu-demo", "cpu-scratch", "gpu-full"])
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


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.batch_size=0", r"'train.batch_size' is 0; it must lie in \[1, inf\]"),
        ("optim.lr=-1", r"'optim.lr' is -1.0; it must lie in \(0.0, 10.0\]"),
        ("model.head.steps=0", r"'model.head.steps' is 0; it must lie in \[1, 64\]"),
        ("model.head.eta_init=1", r"'model.head.eta_init' is 1.0; it must lie in \(0.0, 1.0\)"),
        ("model.head.eta_init=0", r"'model.head.eta_init' is 0.0"),
        ("data.input_size=0", r"'data.input_size' is 0; it must lie in \[32, 1024\]"),
        ("train.epochs=0", r"'train.epochs' is 0"),
        ("train.epochs=-1", r"'train.epochs' is -1"),
        ("augment.hflip=1.5", r"'augment.hflip' is 1.5"),
        ("infer.thresholds=[0.5, 2]", r"'infer.thresholds' is 2.0"),
        ("infer.tta=[]", "'infer.tta' must list at least one value"),
        ("optim.lr=.nan", "'optim.lr' must be a finite number"),
        ("data.input_size=64,data.resize=false", "'data.input_size' is 64 with data.resize false"),
        ("model.head.steps=1", "'model.head.steps' is 1 with episode image"),
    ],
)
def test_out_of_range_values_are_refused_when_the_config_is_built(override, message):
    overrides = override.split(",") if "data.resize" in override else [override]
    with pytest.raises(PipelineError, match=message):
        load_config("smoke", overrides)


def test_choice_lists_come_from_the_declarations():
    from pipeline.config import RULES, TTA_VIEWS, choices
    from pipeline.study.ablate import HEADS

    assert choices("model.head.rule") == RULES == ("none", "frozen", "hebb", "oja", "neuromod", "eligibility")
    assert choices("infer.tta") == TTA_VIEWS == ("none", "hflip")
    assert set(RULES) < set(HEADS)


def test_cli_reports_a_bad_value_in_one_line_and_writes_nothing(workdir, capsys):
    from pipeline.cli import main

    assert main(["train", "--config", "smoke", "--run", "bad", "--set", "train.batch_size=0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config: 'train.batch_size' is 0") and len(err.strip().splitlines()) == 1
    assert not (workdir / "runs" / "bad").exists()


def test_original_placement_takes_the_original_rules_and_its_own_trace():
    with pytest.raises(PipelineError, match="placement original; the original had hebb and oja only"):
        load_config("smoke", ["model.head.placement=original", "model.head.rule=neuromod"])
    with pytest.raises(PipelineError, match="carries its own trace"):
        load_config("smoke", ["model.head.placement=original", "model.head.episode=lifetime"])
    assert load_config("smoke", ["model.head.placement=original", "model.head.steps=1"]).model.head.placement == "original"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["augment.crop=60"], r"'augment.crop' is 60; it must be at most data.input_size \(64\) and a multiple of 8"),
        (["augment.crop=96"], r"'augment.crop' is 96; it must be at most data.input_size \(64\)"),
        (["augment.crop=32", "data.coord_channel=true"], "'augment.crop' with data.coord_channel"),
        (["augment.crop=32", "augment.crop_within=image"], "'augment.crop_within' image needs a crop inside the 101 px image"),
        (["data.input_size=128", "data.resize=false", "augment.crop=128", "augment.crop_within=image"], r"augment.crop <= 101 \(got resize False, crop 128\)"),
    ],
)
def test_training_crops_must_fit_the_input_and_the_encoder_stride(overrides, message):
    with pytest.raises(PipelineError, match=message):
        load_config("smoke", overrides)
    assert load_config("smoke", ["augment.crop=32"]).augment.crop == 32


def test_a_tta_shift_must_keep_the_image_inside_the_padded_canvas():
    padded = ["data.input_size=128", "data.resize=false"]  # 27 px of padding: 13 above, 14 below
    with pytest.raises(PipelineError, match=r"'infer.tta_shift' is 15; .* from -13 to 14 \(data.input_size 128\)"):
        load_config("smoke", padded + ["infer.tta_shift=15"])
    with pytest.raises(PipelineError, match="'infer.tta_shift' is -14"):
        load_config("smoke", padded + ["infer.tta_shift=-14"])
    with pytest.raises(PipelineError, match="needs data.resize false"):
        load_config("smoke", ["data.resize=true", "infer.tta_shift=1"])
    assert [load_config("smoke", padded + [f"infer.tta_shift={s}"]).infer.tta_shift for s in (-13, 14)] == [-13, 14]
    assert load_config("cpu-demo").infer.tta_shift == 0  # measured on six kept runs, not adopted (docs/real-dev/pretrained.md)


def test_the_ema_checkpoint_needs_a_weight_average_and_its_decay_is_a_fraction():
    with pytest.raises(PipelineError, match="infer.checkpoint ema needs train.ema"):
        load_config("smoke", ["infer.checkpoint=ema"])
    with pytest.raises(PipelineError, match="train.ema"):
        load_config("smoke", ["train.ema=1.0"])
    assert load_config("smoke", ["infer.checkpoint=ema", "train.ema=0.99"]).train.ema == 0.99
