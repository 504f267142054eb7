"""What is made from a network's weights, kept while they stay as they are."""

from __future__ import annotations

import weakref
from collections.abc import Callable

from torch import nn


class PerWeights:
    """What a function makes of a network, kept while the network's weights stay as they are
    (a fine-tuning step, or a new state dict, makes it again).

    Checking costs microseconds: the network's tensors are listed once (walking its modules
    costs ~1 ms, a click's window ~7), then their addresses and versions are compared (a
    ``load_state_dict(assign=True)`` that swaps tensors after the first call is not seen).
    """

    def __init__(self, make: Callable[[nn.Module], object]):
        self.make = make
        self._kept: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # network -> (tensors, key, value)

    def __call__(self, model: nn.Module):
        """``make(model)``, made again only when the weights have changed since the last call."""
        kept = self._kept.get(model)
        tensors = kept[0] if kept is not None else (*model.parameters(), *model.buffers())
        key = tuple((t.data_ptr(), t._version, t.device) for t in tensors)
        if kept is not None and kept[1] == key:
            return kept[2]
        value = self.make(model)
        self._kept[model] = (tensors, key, value)
        return value
