import pytest
import torch

from napari_unet.model.unet import UNet, UNetConfig


def test_seed_configuration_has_the_articles_parameter_count():
    model = UNet(in_channels=3, out_channels=2, base_channels=64, depth=4, norm=None)
    assert sum(p.numel() for p in model.parameters()) == 31_031_810


@pytest.mark.parametrize("shape", [(250, 250), (1, 1), (17, 33), (64, 64), (5, 300)])
def test_output_keeps_any_input_size(shape):
    model = UNet(2, 3, base_channels=4, depth=3).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 2, *shape))
    assert out.shape == (2, 3, *shape)


@pytest.mark.parametrize("norm", ["batch", "group", "instance", None])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_every_norm_and_upsampling_builds_and_runs(norm, upsample):
    model = UNet(1, 2, base_channels=8, depth=2, norm=norm, upsample=upsample).eval()
    assert model(torch.randn(1, 1, 20, 20)).shape == (1, 2, 20, 20)


def test_forward_prints_nothing(capsys):
    UNet(1, 3, base_channels=4, depth=2)(torch.randn(1, 1, 16, 16))
    assert capsys.readouterr().out == ""


def test_wrong_channel_count_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(batch, 1, height, width\)"):
        UNet(1, 3, base_channels=4, depth=2)(torch.randn(1, 3, 16, 16))


def test_config_round_trip():
    model = UNet(2, 5, base_channels=6, depth=3, norm="group", upsample="bilinear")
    again = UNet.from_config(UNetConfig(**model.config.to_dict()))
    assert again.config == model.config
    assert sum(p.numel() for p in again.parameters()) == sum(p.numel() for p in model.parameters())


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="norm"):
        UNet(1, 3, norm="layer")
    with pytest.raises(ValueError, match=">= 1"):
        UNet(1, 3, depth=0)
