"""What a model means: its task, channels, classes, normalisation and provenance."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

import numpy as np

Task = Literal["instances", "semantic", "click"]
TASKS: tuple[str, ...] = get_args(Task)
MAX_CLICK_CHANNELS = 3  # positive, negative and the previous mask (see napari_unet.clicks)
# The magnifications a network may see an image at: what prediction accepts, and the range
# of a card's ``zoom`` (napari_unet.inference.zoom picks one automatically otherwise).
MIN_ZOOM, MAX_ZOOM = 0.25, 4.0


@dataclass(frozen=True)
class ModelCard:
    """The facts about a model that are not its architecture; saved beside the weights."""

    name: str = "unnamed"  # shown in the model picker and by `napari-unet info`
    task: Task = "instances"  # instances: background/interior/boundary -> watershed
    classes: tuple[str, ...] = ("background", "interior", "boundary")  # one per output channel
    channels: tuple[str, ...] = ("intensity",)  # what each image input channel holds
    click_channels: int = 0  # extra input channels (after the image's) that encode clicks
    normalization: tuple[float, float] = (1.0, 99.8)  # percentiles mapped to 0 and 1
    postprocess: dict[str, Any] = field(default_factory=dict)  # InstanceParams tuned for this model
    zoom: float | None = None  # the zoom it segments at (set by fine-tuning); None: automatic
    provenance: dict[str, Any] = field(default_factory=dict)  # trained on what, when, how long
    # semantic models: the label value each output channel stands for (None: the channel's index)
    label_values: tuple[int, ...] | None = None
    intensity: dict[str, Any] = field(default_factory=dict)  # semantic: normalisation scheme (inference/intensity.py)
    plan: dict[str, Any] = field(default_factory=dict)  # semantic: the training plan (training/plan.py), as data

    def to_dict(self) -> dict:
        """The card as plain data (for the model file's JSON header)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        """A card from :meth:`to_dict`'s data; unknown keys (newer files) are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("classes", "channels", "normalization", "label_values"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        return cls(**known)


def check_card(data: object, in_channels: int, out_channels: int) -> ModelCard:
    """The card a model file's header describes, checked against the network it belongs to.

    Missing fields take their defaults (files written before a field existed still load)
    and unknown ones are ignored (files written by a newer napari-unet still load); every
    field present, and every default taken, must hold a value this version can use.

    Parameters
    ----------
    data
        The card as plain data (the header's JSON).
    in_channels, out_channels
        The network's inputs and outputs (its config).

    Raises
    ------
    ValueError
        Naming the first field that is wrong (``"field 'card.classes' ..."``) and what it should hold.
    """
    if not isinstance(data, dict):
        raise ValueError(f"field 'card' is {type(data).__name__}, not a mapping of the card's fields")
    defaults = {f.name: getattr(ModelCard(), f.name) for f in fields(ModelCard)}
    value = {**defaults, **{k: v for k, v in data.items() if k in defaults}}

    def wrong(key: str, problem: str) -> ValueError:
        missing = "" if key in data else " (missing, so its default)"
        return ValueError(f"field 'card.{key}'{missing} {problem}")

    if not isinstance(value["name"], str):
        raise wrong("name", f"is {value['name']!r}, not a string")
    if value["task"] not in TASKS:
        raise wrong("task", f"is {value['task']!r}; it must be one of {', '.join(map(repr, TASKS))}")
    for key in ("classes", "channels"):
        if not _is_names(value[key]):
            raise wrong(key, f"is {value[key]!r}, not a non-empty list of names (strings)")
    if len(value["classes"]) != out_channels:
        raise wrong("classes", f"has {len(value['classes'])} names but the network has {out_channels} "
                               "outputs; it needs one class name per output")
    clicks = value["click_channels"]
    if not _is_int(clicks) or not 0 <= clicks <= min(MAX_CLICK_CHANNELS, in_channels - 1):
        raise wrong("click_channels", f"is {clicks!r}; it must be a whole number from 0 to "
                                      f"{MAX_CLICK_CHANNELS} and less than the network's {in_channels} inputs")
    low_high = value["normalization"]
    if not (isinstance(low_high, (list, tuple)) and len(low_high) == 2 and all(map(_is_number, low_high))
            and 0 <= low_high[0] < low_high[1] <= 100):
        raise wrong("normalization", f"is {low_high!r}; it must be two percentiles [low, high] "
                                     "with 0 <= low < high <= 100")
    values = value["label_values"]
    if values is not None and not (isinstance(values, (list, tuple)) and len(values) == out_channels
                                   and all(_is_int(v) and v >= 0 for v in values) and len(set(values)) == len(values)):
        raise wrong("label_values", f"is {values!r}; it must be null or {out_channels} different whole numbers "
                                    ">= 0, the label value of each output")
    for key in ("postprocess", "provenance", "intensity", "plan"):
        if not isinstance(value[key], dict):
            raise wrong(key, f"is {value[key]!r}, not a mapping")
    zoom = value["zoom"]
    if zoom is not None and not (_is_number(zoom) and MIN_ZOOM <= zoom <= MAX_ZOOM):
        raise wrong("zoom", f"is {zoom!r}; it must be null (automatic) or a number from {MIN_ZOOM} to {MAX_ZOOM}")
    return ModelCard.from_dict(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is a Python int


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_names(value: object) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, str) for v in value)


def what_was_found(labels, card: ModelCard) -> str:
    """``"N objects"``, or for a class map the classes present, by name (what the CLI and Segment say)."""
    if card.task != "semantic":
        return f"{int(np.max(labels, initial=0))} objects"
    values = card.label_values if card.label_values is not None else range(len(card.classes))
    names = dict(zip(values, card.classes))
    present = [names.get(int(v), str(int(v))) for v in np.unique(labels) if int(v) != 0]
    return f"class map: {', '.join(present) or 'background only'}"
