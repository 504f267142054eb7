"""Segmentation loss: boundary-weighted cross-entropy plus soft Dice, both masked.

Pixels whose class is :data:`~napari_unet.training.targets.IGNORE_INDEX` contribute nothing to
either term, neither to the value nor to the gradient, whatever the logits there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from napari_unet.training.targets import IGNORE_INDEX


@dataclass(frozen=True)
class LossConfig:
    """Weights of the two loss terms."""

    dice_weight: float = 1.0  # soft Dice balances the small boundary class against background
    dice_classes: tuple[int, ...] = (1, 2)  # foreground classes scored by Dice (interior, boundary)
    smooth: float = 1.0  # Dice smoothing: keeps object-free batches finite
    # Dice only over the classes present in the batch's targets: a rare class absent from a batch
    # is then not pushed to zero everywhere by Dice (the cross-entropy still punishes false positives)
    dice_present_only: bool = False


def weighted_cross_entropy(
    logits: torch.Tensor, classes: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Mean of per-pixel cross-entropy × weight over the annotated pixels' weights."""
    ce = F.cross_entropy(logits, classes, reduction="none", ignore_index=IGNORE_INDEX)
    weights = torch.where(classes == IGNORE_INDEX, torch.zeros_like(weights), weights)
    total = weights.sum()
    if total <= 0:
        return logits.sum() * 0.0  # nothing annotated: zero loss, gradient graph intact
    return (ce * weights).sum() / total


def soft_dice_loss(
    logits: torch.Tensor,
    classes: torch.Tensor,
    dice_classes: tuple[int, ...] = (1, 2),
    smooth: float = 1.0,
    present_only: bool = False,
) -> torch.Tensor:
    """1 − mean soft Dice of ``dice_classes`` over the batch, annotated pixels only.

    With ``present_only`` the mean is over the classes that occur in ``classes`` (0 if none).
    """
    valid = (classes != IGNORE_INDEX).unsqueeze(1)
    probs = logits.float().softmax(dim=1)
    # where() rather than multiplication: ignored pixels then give exactly zero gradient
    # even if their logits are extreme.
    probs = torch.where(valid, probs, torch.zeros_like(probs))
    scores = []
    for c in dice_classes:
        p = probs[:, c]
        t = (classes == c).to(p.dtype)
        if present_only and not bool(t.any()):
            continue
        inter = (p * t).sum()
        scores.append((2 * inter + smooth) / (p.sum() + t.sum() + smooth))
    if not scores:
        return logits.sum() * 0.0  # no scored class in the batch: no Dice term, gradient graph intact
    return 1.0 - torch.stack(scores).mean()


def segmentation_loss(
    logits: torch.Tensor,
    classes: torch.Tensor,
    weights: torch.Tensor,
    config: LossConfig = LossConfig(),
) -> torch.Tensor:
    """Weighted cross-entropy + ``dice_weight`` × soft Dice.

    Parameters
    ----------
    logits
        (B, C, H, W) network output.
    classes
        (B, H, W) int64 targets; :data:`IGNORE_INDEX` marks unannotated pixels.
    weights
        (B, H, W) float per-pixel cross-entropy weights.
    config
        Term weights.
    """
    loss = weighted_cross_entropy(logits, classes, weights)
    if config.dice_weight:
        loss = loss + config.dice_weight * soft_dice_loss(
            logits, classes, config.dice_classes, config.smooth, config.dice_present_only
        )
    return loss
