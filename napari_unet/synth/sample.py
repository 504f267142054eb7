"""A synthetic nuclei image for the README demo and napari's File > Open Sample."""

from __future__ import annotations

from dataclasses import replace

from napari_unet.synth.config import SynthConfig
from napari_unet.synth.images import SynthSample, synth_image


def sample_config() -> SynthConfig:
    """A calm, typical widefield image: 12-bit camera, moderate density, a few clusters."""
    return replace(
        SynthConfig(),
        size=(28.0, 32.0), size_spread=(0.18, 0.2), elongation=(0.3, 0.35), wobble=(0.05, 0.06),
        p_dividing=(0.01, 0.01), p_bean=(0.04, 0.04), coverage=(0.2, 0.2), p_clustered=1.0,
        packing=(0.88, 0.9), brightness_spread=(0.3, 0.3), overlap_gain=(0.3, 0.3), dome=(0.5, 0.5),
        texture=(0.12, 0.12), speckle=(0.08, 0.08), spots=(0.4, 0.4), p_out_of_focus=(0.06, 0.06),
        psf_sigma=(1.0, 1.0), background=(0.05, 0.05), haze=(0.05, 0.05), blobs=(0.1, 0.1),
        vignetting=(0.15, 0.15), gradient=(0.05, 0.05), photons=(1500.0, 1500.0),
        read_noise=(1.5, 1.5), fill=(0.35, 0.35), dtype_weights=(0.0, 1.0, 0.0, 0.0),
    )  # fmt: skip


def nuclei_sample(shape: tuple[int, int] = (1024, 1024), seed: int = 3) -> SynthSample:
    """A realistic uint16 (12-bit) fluorescence-nuclei image with its labels.

    Parameters
    ----------
    shape : tuple of int
        Height and width.
    seed : int
        Same seed, same image.

    Returns
    -------
    SynthSample
        ``image`` (uint16) and ``labels`` (int32).
    """
    return synth_image(seed, shape, sample_config())


def make_sample_data() -> list[tuple]:
    """The npe2 sample-data contribution: one image layer, made on the fly."""
    return [(nuclei_sample().image, {"name": "nuclei (synthetic)"}, "image")]
