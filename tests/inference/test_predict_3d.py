"""A 3D network predicts volumes in 3D tiles: blended like 2D tiles, series volume by volume,
tiles that shrink when memory runs out."""

import numpy as np
import pytest
import torch

from napari_unet import predict
from napari_unet.inference.images import normalize
from napari_unet.model.unet import UNet


@pytest.fixture
def tiny_3d() -> UNet:
    torch.manual_seed(0)
    return UNet(1, 3, base_channels=4, depth=2, spatial_dims=3).eval()


@pytest.fixture
def volume(rng) -> np.ndarray:
    return rng.random((20, 52, 60)).astype(np.float32)


def test_one_tile_is_exactly_the_network_on_the_whole_volume(tiny_3d, volume):
    flat = normalize(volume.reshape(1, -1, volume.shape[-1])).reshape(volume.shape)  # one scale for the volume
    with torch.inference_mode():
        direct = torch.softmax(tiny_3d(torch.from_numpy(flat)[None, None]), 1)[0].numpy()
    assert np.allclose(predict(volume, tiny_3d, tile_size=(32, 64, 64)), direct, atol=1e-5)


def test_tiles_blend_into_the_whole_volume_answer(tiny_3d, volume):
    whole = predict(volume, tiny_3d, tile_size=(32, 64, 64))
    tiled = predict(volume, tiny_3d, tile_size=(16, 32, 32), overlap=0.25)
    assert tiled.shape == whole.shape == (3, 20, 52, 60)
    assert np.allclose(tiled.sum(0), 1.0, atol=1e-4)
    # tiles see less context at their faces; blended, the answers stay close everywhere
    assert np.abs(tiled - whole).max() < 0.05


def test_a_series_of_volumes_is_predicted_volume_by_volume(tiny_3d, volume):
    series = np.stack([volume, volume[:, ::-1]])
    both = predict(series, tiny_3d)
    assert both.shape == (3, 2, 20, 52, 60)
    assert np.allclose(both[:, 1], predict(volume[:, ::-1], tiny_3d), atol=1e-5)


def test_zoom_applies_to_y_and_x_and_comes_back_at_the_image_voxels(tiny_3d, volume):
    assert predict(volume, tiny_3d, zoom=0.5).shape == (3, 20, 52, 60)
    assert predict(volume, tiny_3d, zoom=0.5, keep_zoom=True).shape == (3, 20, 26, 30)


def test_test_time_augmentation_runs_on_volumes(tiny_3d, volume):
    plain = predict(volume, tiny_3d)
    views = predict(volume, tiny_3d, tta=True)
    assert views.shape == plain.shape and not np.allclose(views, plain)
    assert np.allclose(views.sum(0), 1.0, atol=1e-4)


@pytest.mark.parametrize(("image", "kwargs", "message"), [
    (np.zeros((40, 50), np.float32), {}, "needs a volume"),
    (np.zeros((8, 40, 50), np.float32), {"tile_size": (16, 16)}, "one per axis"),
    (np.zeros((8, 40, 50), np.float32), {"tile_size": 8}, "tile_size"),
])
def test_wrong_inputs_for_a_3d_network_say_what_to_do(tiny_3d, image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        predict(image, tiny_3d, **kwargs)


class _SmallMemory(UNet):
    """A real 3D U-Net on a device with little memory: tiles above ``limit`` voxels fail as
    CUDA's allocator does (CI has no GPU to run out of).
    """

    limit = 16 * 128 * 128

    def forward(self, x):
        if x[0, 0].numel() > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return super().forward(x)


def test_out_of_memory_shrinks_the_tile_and_still_answers(tiny_3d):
    small = _SmallMemory(1, 3, base_channels=4, depth=2, spatial_dims=3).eval()
    small.load_state_dict(tiny_3d.state_dict())
    volume = np.random.default_rng(1).random((20, 128, 128)).astype(np.float32)
    answer = predict(volume, small, tile_size=(64, 256, 256))  # too big: halved until it fits
    assert answer.shape == (3, 20, 128, 128)
    assert np.allclose(answer.sum(0), 1.0, atol=1e-4)
    reference = predict(volume, tiny_3d, tile_size=(20, 128, 128))
    assert np.abs(answer - reference).max() < 0.05


def test_out_of_memory_on_the_cpu_at_the_smallest_tile_is_raised(tiny_3d):
    small = _SmallMemory(1, 3, base_channels=4, depth=2, spatial_dims=3).eval()
    small.limit = 100
    with pytest.raises(torch.OutOfMemoryError):
        predict(np.zeros((16, 130, 130), np.float32), small)


def _network_answer(net: UNet, volume: np.ndarray) -> np.ndarray:
    flat = normalize(volume.reshape(1, -1, volume.shape[-1])).reshape(volume.shape)
    with torch.inference_mode():
        return torch.softmax(net.eval()(torch.from_numpy(flat)[None, None]), 1)[0].numpy()


def test_prediction_follows_weights_changed_in_place_between_calls(tiny_3d, volume):
    # batch norms are folded into the convolutions for speed; a fine-tuning step or a loaded
    # state dict between two predictions must still be seen by the second
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in tiny_3d.modules():
            if isinstance(m, torch.nn.BatchNorm3d):  # trained statistics, not the identity
                m.running_mean.uniform_(-0.2, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    first = predict(volume, tiny_3d, tile_size=(32, 64, 64))
    assert np.allclose(first, _network_answer(tiny_3d, volume), atol=1e-5)
    with torch.no_grad():
        for p in tiny_3d.parameters():
            p.mul_(1.5)
    second = predict(volume, tiny_3d, tile_size=(32, 64, 64))
    assert not np.allclose(second, first, atol=1e-3)
    assert np.allclose(second, _network_answer(tiny_3d, volume), atol=1e-5)
    other = UNet(1, 3, base_channels=4, depth=2, spatial_dims=3)
    tiny_3d.load_state_dict(other.state_dict())
    assert np.allclose(predict(volume, tiny_3d, tile_size=(32, 64, 64)), _network_answer(other, volume), atol=1e-5)
