import json
import math

import pytest
import torch
from safetensors.torch import load_file

from napari_unet.model.files import CLICK_MODEL, DEFAULT_MODEL, ModelFileError, load_model, read_header, save_model
from napari_unet.model.unet import UNet, UNetConfig, plan_pools


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


# --- 3D -------------------------------------------------------------------------------------


def _count(cin, cout, base, pools, conv_k):
    """Parameters of a norm-free, transposed-upsampling U-Net, from its shape alone."""
    def two_conv(a, b):
        return a * b * conv_k + b + b * b * conv_k + b

    widths = [base * 2**i for i in range(len(pools) + 1)]
    total = two_conv(cin, widths[0]) + widths[0] * cout + cout
    for i, kernel in enumerate(pools):
        up = widths[i + 1] * widths[i] * math.prod(kernel) + widths[i]
        total += two_conv(widths[i], widths[i + 1]) + up + two_conv(2 * widths[i], widths[i])
    return total


def test_parameter_count_formula_matches_2d_and_3d():
    assert _count(3, 2, 64, [(2, 2)] * 4, 9) == 31_031_810  # the formula is the article's network
    pools = plan_pools((3.0, 1.0, 1.0), 3)
    model = UNet(1, 3, base_channels=8, depth=3, norm=None, spatial_dims=3, pools=pools)
    assert sum(p.numel() for p in model.parameters()) == _count(1, 3, 8, pools, 27)
    iso = UNet(1, 3, base_channels=8, depth=3, norm=None, spatial_dims=3)
    assert sum(p.numel() for p in iso.parameters()) == _count(1, 3, 8, [(2, 2, 2)] * 3, 27)


@pytest.mark.parametrize(
    "spacing, expected",
    [
        ((1, 1, 1), None),  # isotropic: 2x2x2 at every level
        ((3, 1, 1), ((1, 2, 2), (2, 2, 2), (2, 2, 2))),  # Z waits one level, then all pool
        ((5, 0.5, 0.5), ((1, 2, 2), (1, 2, 2), (1, 2, 2))),  # 10x coarser Z: 3 levels in-plane only
    ],
)
def test_plan_pools_follows_nnunet(spacing, expected):
    pools = plan_pools(spacing, 3)
    assert UNetConfig(depth=3, spatial_dims=3, pools=pools).pools == expected


def test_plan_pools_lets_coarse_z_catch_up_and_treats_every_axis_alike():
    assert plan_pools((5, 0.5, 0.5), 4)[-1] == (2, 2, 2)  # in-plane has caught up: Z pools too
    assert plan_pools((2, 1, 1), 2) == ((1, 2, 2), (2, 2, 2))  # exactly 2x waits a level, as nnU-Net
    assert plan_pools((0.5, 1, 1), 2) == ((2, 1, 1), (2, 2, 2))  # fine Z: the same rule per axis


def test_plan_pools_refuses_nonsense_spacing():
    with pytest.raises(ValueError, match="spacing"):
        plan_pools((0, 1, 1), 3)


@pytest.mark.parametrize("spacing", [(1, 1, 1), (5, 0.5, 0.5)])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 17, 33), (7, 9, 20), (3, 64, 40), (16, 8, 8)])
def test_3d_output_keeps_any_input_size(spacing, shape):
    model = UNet(2, 3, base_channels=4, depth=3, spatial_dims=3, pools=plan_pools(spacing, 3)).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 2, *shape))
    assert out.shape == (2, 3, *shape)


def test_3d_multiple_is_per_axis():
    assert UNet(1, 3, base_channels=4, depth=3).multiple == 8  # 2D: unchanged, one int
    assert UNet(1, 3, base_channels=4, depth=3, spatial_dims=3).multiple == (8, 8, 8)
    anisotropic = UNet(1, 3, base_channels=4, depth=3, spatial_dims=3, pools=plan_pools((5, 0.5, 0.5), 3))
    assert anisotropic.multiple == (1, 8, 8)
    # no padding needed at multiples: the network sees exactly the input
    model = UNet(1, 2, base_channels=4, depth=2, spatial_dims=3, pools=((1, 2, 2), (2, 2, 2))).eval()
    assert model.multiple == (2, 4, 4)
    assert model(torch.randn(1, 1, 2, 4, 8)).shape == (1, 2, 2, 4, 8)


@pytest.mark.parametrize("norm", ["batch", "group", "instance", None])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_every_norm_and_upsampling_builds_and_runs_in_3d(norm, upsample):
    pools = ((1, 2, 2), (2, 2, 2))
    model = UNet(1, 2, base_channels=4, depth=2, norm=norm, upsample=upsample, spatial_dims=3, pools=pools).eval()
    assert model(torch.randn(1, 1, 6, 12, 10)).shape == (1, 2, 6, 12, 10)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def test_3d_shape_error_names_the_expected_shape():
    model = UNet(1, 3, base_channels=4, depth=2, spatial_dims=3)
    with pytest.raises(ValueError, match=r"\(batch, 1, z, y, x\)"):
        model(torch.randn(1, 1, 16, 16))


def test_config_fields_are_checked_and_lists_become_tuples():
    cfg = UNetConfig(depth=2, spatial_dims=3, pools=[[1, 2, 2], [2, 2, 2]])  # as JSON gives them
    assert cfg.pools == ((1, 2, 2), (2, 2, 2)) and hash(cfg)
    assert UNetConfig(depth=2, spatial_dims=3, pools=[[2, 2, 2]] * 2).pools is None  # one spelling
    for bad in (dict(spatial_dims=4), dict(spatial_dims=True), dict(spatial_dims=3, pools=[[1, 2, 2]]),
                dict(spatial_dims=3, pools=[[3, 2, 2]] * 2), dict(spatial_dims=3, pools="122"),
                dict(pools=[[1, 2]] * 2)):
        with pytest.raises(ValueError):
            UNetConfig(depth=2, **bad)


def test_3d_config_round_trip_through_json():
    model = UNet(1, 3, base_channels=4, depth=2, spatial_dims=3, pools=((1, 2, 2), (2, 2, 2)))
    again = UNet.from_config(UNetConfig(**json.loads(json.dumps(model.config.to_dict()))))
    assert again.config == model.config
    assert again.state_dict().keys() == model.state_dict().keys()


def test_3d_model_file_round_trip(tmp_path):
    torch.manual_seed(0)
    model = UNet(1, 3, base_channels=4, depth=2, spatial_dims=3, pools=plan_pools((3, 1, 1), 2)).eval()
    path = save_model(model, tmp_path / "volume.safetensors", trained_on="synthetic volumes")
    header = read_header(path)
    assert header["config"]["spatial_dims"] == 3 and header["config"]["pools"] == [[1, 2, 2], [2, 2, 2]]
    loaded = load_model(path)
    assert loaded.config == model.config and loaded.multiple == (2, 4, 4)
    x = torch.randn(1, 1, 5, 11, 13)
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x))


def test_3d_file_with_bad_pools_is_refused_by_name(tmp_path):
    from safetensors.torch import load_file, save_file

    model = UNet(1, 3, base_channels=4, depth=2, spatial_dims=3, pools=((1, 2, 2), (2, 2, 2)))
    path = save_model(model, tmp_path / "m.safetensors")
    meta = read_header(path)
    config = {**meta["config"], "pools": [[1, 3, 3], [2, 2, 2]]}
    save_file(load_file(path), path, metadata={"format": meta["format"], "config": json.dumps(config),
                                               "card": json.dumps(meta["card"])})
    with pytest.raises(ModelFileError, match="pools"):
        load_model(path)


# --- 2D unchanged ---------------------------------------------------------------------------


def test_2d_config_dict_has_only_the_original_fields():
    cfg = UNet(2, 5, base_channels=6, depth=3, norm="group").config
    assert list(cfg.to_dict()) == ["in_channels", "out_channels", "base_channels", "depth", "norm", "upsample"]
    assert cfg.spatial_dims == 2 and cfg.pools is None


@pytest.mark.parametrize("path", [DEFAULT_MODEL, CLICK_MODEL])
def test_shipped_models_load_unchanged(path):
    stored = read_header(path)["config"]
    model = load_model(path)
    assert model.config.to_dict() == stored  # saving it again writes the same config
    assert model.config.spatial_dims == 2 and model.multiple == 2 ** stored["depth"]
    state = load_file(path)
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
