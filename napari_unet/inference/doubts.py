"""Whether a model's answer on an image looks like the model was out of its depth.

A network trained for small round nuclei, given a brain MRI, answers with the confidence
of any other answer: one label over the whole brain, "1 objects". These checks read the
answer (not the image) and say in words when it is degenerate, so that a user does not
take a count at face value and knows what to do instead.
"""

from __future__ import annotations

import numpy as np

from napari_unet.labels import object_sizes
from napari_unet.model.card import ModelCard

# What the shipped models were trained for, by card name (a user's model names its own images).
PURPOSES = {"nuclei": "2D fluorescence nuclei (round, bright on dark, 8-40 px across)"}
ONE_OBJECT_SHARE = 0.5  # one object holds this much of everything found ...
OVER_IMAGE_SHARE = 0.15  # ... and what was found covers this much of the image: one blob, not objects
FEW_OBJECTS = 3  # this few objects ...
FEW_COVER_SHARE = 0.25  # ... covering this much of the image: the model drew regions, not objects
SAMPLE = 4_000_000  # pixels read at most: area shares survive a regular subsample; the UI thread stays free
TEACH = "teach a model for it (the New model widget, or `napari-unet train`)"


def purpose(card: ModelCard) -> str:
    """What the model was trained for, in words for the status line."""
    return PURPOSES.get(card.name, f"the images '{card.name}' was trained on")


def out_of_depth(labels: np.ndarray, card: ModelCard) -> str | None:
    """A sentence for the user when ``labels`` (the model's instance labels of one image or
    stack) look degenerate, else ``None``.

    Degenerate: one object over most of what was found while that covers a large part of
    the image, or a handful of objects covering a quarter of it. Semantic (class map)
    models are not judged: one region over most of the image is a normal class map.
    Counts in a large image are taken on a regular subsample of at most :data:`SAMPLE` pixels.
    """
    if card.task != "instances":
        return None
    lab = np.asarray(labels)
    step = int(np.ceil((lab.size / SAMPLE) ** (1 / lab.ndim))) if lab.size > SAMPLE else 1
    lab = lab[(slice(None, None, step),) * lab.ndim]
    sizes = object_sizes(lab)[1:]
    sizes = sizes[sizes > 0]
    found = int(sizes.sum())
    if found == 0:
        return None  # an empty field is a normal image; the count (0) already says it
    share = found / lab.size
    largest = int(sizes.max())
    if largest >= ONE_OBJECT_SHARE * found and share >= OVER_IMAGE_SHARE:
        what = f"one object covers {100 * largest / lab.size:.0f}% of the image"
    elif len(sizes) <= FEW_OBJECTS and share >= FEW_COVER_SHARE:
        what = f"{len(sizes)} objects cover {100 * share:.0f}% of the image"
    else:
        return None
    return (f"This model was trained for {purpose(card)}; this image looks different ({what}), so the "
            f"masks are probably not objects: {TEACH}.")
