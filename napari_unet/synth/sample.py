"""napari's File > Open Sample: a synthetic nuclei image (also the README demo's) and the
abdomen-like MR and CT phantoms with their tissue-class maps.
"""

from __future__ import annotations

from dataclasses import replace

from napari_unet.io import ImageFile
from napari_unet.io.medical import spacing_affine
from napari_unet.io.napari_hooks import AFFINE, image_layer
from napari_unet.synth.config import SynthConfig
from napari_unet.synth.images import SynthSample, synth_image
from napari_unet.synth.phantom import Phantom, PhantomConfig, synth_phantom

PHANTOM_SEED = 7  # the sample phantom: same seed, same volume in every session


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


def phantom_layers(phantom: Phantom, name: str) -> list[tuple]:
    """A phantom as napari layer-data tuples: the image in mm, and its class map named by class.

    The image layer's ``scale`` is the voxel spacing and its ``metadata["affine"]`` the
    NIfTI affine of that grid, as for a scan opened from a file, so labels made on it
    save as NIfTI that lies on it. The Labels layer's features name each class (the
    status bar shows the class under the mouse).
    """
    affine = spacing_affine(phantom.spacing)
    modality = "CT" if phantom.image.dtype.kind == "i" else "MR"
    image = image_layer(ImageFile(phantom.image, phantom.spacing, affine, modality, name))
    classes = {0: "background", **phantom.classes}
    features = {"index": list(classes), "class": list(classes.values())}
    labels = (phantom.labels, {"name": f"{name} classes", "scale": phantom.spacing, "features": features,
                               "opacity": 0.4, "metadata": {AFFINE: affine}}, "labels")
    return [image, labels]


def make_phantom_mr() -> list[tuple]:
    """The npe2 sample-data contribution: an abdomen-like MR phantom (3 mm slices) and its classes."""
    return phantom_layers(synth_phantom(PHANTOM_SEED, PhantomConfig(modality="MR")), "abdomen MR (synthetic)")


def make_phantom_ct() -> list[tuple]:
    """The npe2 sample-data contribution: an abdomen-like CT phantom in Hounsfield units and its classes."""
    return phantom_layers(synth_phantom(PHANTOM_SEED, PhantomConfig(modality="CT")), "abdomen CT (synthetic)")
