"""What a model means: its task, channels, classes, normalisation and provenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Task = Literal["instances", "semantic", "click"]


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

    def to_dict(self) -> dict:
        """The card as plain data (for the model file's JSON header)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        """A card from :meth:`to_dict`'s data; unknown keys (newer files) are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("classes", "channels", "normalization"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)
