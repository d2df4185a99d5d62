import numpy as np
import torch

from pipeline.config import load_config
from pipeline.data.dataset import batch_inputs, to_original_geometry
from pipeline.models.factory import build_model
from pipeline.models.predict import predict_probs


def test_hflip_tta_is_the_mean_of_the_plain_and_the_hand_flipped_prediction():
    cfg = load_config("smoke", ["data.input_size=128", "data.resize=false", "train.device=cpu"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 101, 101), dtype=np.uint8)
    depth = np.zeros(3, np.float32)
    with torch.no_grad():
        plain = torch.sigmoid(model(batch_inputs(images, depth, cfg.data))[0])
        # flip the 101 px images by hand, predict, flip the prediction back by hand
        mirrored = torch.sigmoid(model(batch_inputs(images[:, :, ::-1].copy(), depth, cfg.data))[0])
    expected = 0.5 * (to_original_geometry(plain, cfg.data).numpy() + to_original_geometry(mirrored, cfg.data).numpy()[:, :, ::-1])
    got = predict_probs(model, images, depth, cfg, torch.device("cpu"), views=["none", "hflip"])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    alone = predict_probs(model, images, depth, cfg, torch.device("cpu"), views=["none"])
    assert np.abs(got - alone).max() > 1e-4  # the flipped view really contributes
