import torch

from napari_unet.training.losses import LossConfig, segmentation_loss, soft_dice_loss
from napari_unet.training.targets import IGNORE_INDEX


def _loss_and_grad(logits, classes, weights):
    logits = logits.clone().requires_grad_(True)
    loss = segmentation_loss(logits, classes, weights, LossConfig(dice_weight=1.0))
    loss.backward()
    return loss.detach(), logits.grad


def test_unannotated_pixels_change_neither_loss_nor_gradients():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 16, 16, generator=g)
    classes = torch.randint(0, 3, (2, 16, 16), generator=g)
    weights = torch.rand(2, 16, 16, generator=g) + 0.5
    ignored = torch.zeros(2, 16, 16, dtype=torch.bool)
    ignored[:, :, 8:] = True
    classes[ignored] = IGNORE_INDEX
    loss, grad = _loss_and_grad(logits, classes, weights)

    # perturb everything outside the annotated region: logits (even extreme ones) and weights
    logits2 = logits.clone()
    logits2[ignored.unsqueeze(1).expand_as(logits2)] = 50.0 * torch.randn(int(ignored.sum()) * 3, generator=g)
    weights2 = weights.clone()
    weights2[ignored] = 99.0
    loss2, grad2 = _loss_and_grad(logits2, classes, weights2)
    assert torch.allclose(loss, loss2)
    assert torch.allclose(grad, grad2)
    assert (grad2[ignored.unsqueeze(1).expand_as(grad2)] == 0).all()


def test_loss_is_small_for_confident_correct_logits_and_large_for_wrong():
    classes = torch.zeros(1, 8, 8, dtype=torch.long)
    classes[:, 2:6, 2:6] = 1
    weights = torch.ones(1, 8, 8)
    right = torch.nn.functional.one_hot(classes, 3).permute(0, 3, 1, 2).float() * 20
    wrong = right.roll(1, dims=1)
    assert segmentation_loss(right, classes, weights) < 0.05
    assert segmentation_loss(wrong, classes, weights) > 1.0


def test_nothing_annotated_gives_zero_loss_with_a_graph():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    classes = torch.full((1, 4, 4), IGNORE_INDEX)
    loss = segmentation_loss(logits, classes, torch.zeros(1, 4, 4))
    loss.backward()
    assert float(loss.detach()) == 0.0 and (logits.grad == 0).all()



def test_a_class_absent_from_the_batch_is_left_out_of_dice_when_present_only():
    """A rare class missing from most batches is not scored (and pushed to zero) by Dice there."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 16, 16, generator=g)
    classes = torch.randint(0, 3, (2, 16, 16), generator=g)  # class 3 (the rare one) is absent
    scored = soft_dice_loss(logits, classes, (1, 2))
    assert torch.allclose(soft_dice_loss(logits, classes, (1, 2, 3), present_only=True), scored)
    assert soft_dice_loss(logits, classes, (1, 2, 3)) > scored + 0.05 # an absent class scores ~0 otherwise
    classes[0, :2, :2] = 3  # present: scored again
    assert not torch.allclose(soft_dice_loss(logits, classes, (1, 2, 3), present_only=True),
                              soft_dice_loss(logits, classes, (1, 2)))
