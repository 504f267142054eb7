"""Fine-tune the shipped model on corrected label files, and see whether it got better.

    python examples/finetune_from_files.py [--steps N]

Generated large, textured nuclei (unlike the ones the model was trained on) stand in for a
user's images: one image and its labels are written as TIFF files, read back as a user's
would be, the model is fine-tuned on them, and both models are scored on another image.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import tifffile

import napari_unet as nu
from napari_unet.io import read_image
from napari_unet.synth.config import SynthConfig
from napari_unet.synth.images import synth_image
from napari_unet.training.metrics import average_precision


def main(argv: list[str] | None = None) -> int:
    """Write, read, fine-tune, score; print AP@0.5 before and after."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="fine-tuning steps (default 60)")
    parser.add_argument("--size", type=int, default=512, help="edge of the generated images (default 512)")
    args = parser.parse_args(argv)
    config = SynthConfig().shifted()  # bigger, low-contrast, textured nuclei
    shape = (args.size, args.size)
    train = synth_image(np.random.default_rng(1), shape, config)  # the image the user corrected
    test = synth_image(np.random.default_rng(2), shape, config)  # one they did not
    folder = Path(tempfile.mkdtemp(prefix="napari-unet-example-"))
    tifffile.imwrite(folder / "cells.tif", train.image)
    tifffile.imwrite(folder / "cells_masks.tif", train.labels)

    model = nu.load_model()
    tuned = nu.finetune(model, [read_image(folder / "cells.tif")], [read_image(folder / "cells_masks.tif")],
                        max_steps=args.steps, device="cpu")
    before = average_precision(test.labels, nu.segment(test.image, model, device="cpu"))[0]
    after = average_precision(test.labels, nu.segment(test.image, tuned, device="cpu"))[0]
    nu.save_model(tuned, folder / "fine-tuned.safetensors")
    print(f"AP@0.5 on an unseen image: {before:.2f} before, {after:.2f} after {args.steps} steps")
    print(f"saved {folder / 'fine-tuned.safetensors'} ({tuned.card.provenance['fine_tuned_on']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
