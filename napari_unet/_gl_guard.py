"""Keep triton out of a process that has already loaded Mesa's LLVM (Linux OpenGL).

torchvision imports ``torch._dynamo``, which imports triton when it is installed (CUDA
builds of torch ship it). triton's bundled LLVM crashes the process (segmentation fault)
if the system's libLLVM, which Mesa's OpenGL drivers load (llvmpipe, AMD), is already
there -- exactly the case when napari has drawn its canvas and then loads this plugin
from the Plugins menu. triton only compiles GPU kernels for ``torch.compile``, which
napari-unet does not use; blocked, ``import triton`` raises ImportError, which torch
handles as "triton not installed". Code that imports torchvision later, on first use,
calls :func:`block_triton` again just before.
"""

from __future__ import annotations

import sys


def _system_llvm_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return "/libLLVM" in maps.read()
    except OSError:
        return False


def block_triton() -> None:
    """Make ``import triton`` fail if the system's LLVM is loaded and triton is not yet."""
    if sys.platform.startswith("linux") and "triton" not in sys.modules and _system_llvm_loaded():
        sys.modules["triton"] = None


block_triton()
