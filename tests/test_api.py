"""The public API: each name is what the docs say, whatever was imported before it."""

from __future__ import annotations

import subprocess
import sys

import napari_unet


def test_api_names_stay_functions_after_their_subpackages_are_imported():
    # a script (or napari) that imported napari_unet.finetune.* first used to get the
    # subpackage for napari_unet.finetune: "'module' object is not callable"
    code = (
        "import types\n"
        "import napari_unet.finetune.segmentation, napari_unet.finetune.clicks, napari_unet.training.tasks\n"
        "import napari_unet as nu\n"
        "from napari_unet import finetune\n"
        "from napari_unet.finetune import both\n"
        "assert callable(finetune) and not isinstance(finetune, types.ModuleType), finetune\n"
        "assert isinstance(both, types.ModuleType)  # the subpackage stays importable\n"
        "bad = [n for n in nu.__all__ if isinstance(getattr(nu, n), types.ModuleType)]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    assert set(napari_unet.__all__) <= set(dir(napari_unet))
