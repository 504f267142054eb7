"""The card of a semantic model: label values, intensity scheme and plan; older cards still load."""

import pytest

from napari_unet.model.card import ModelCard, check_card


def test_cards_written_before_semantic_fields_still_load() -> None:
    old = {"name": "nuclei", "task": "instances", "classes": ["background", "interior", "boundary"]}
    card = check_card(old, 1, 3)
    assert card.label_values is None and card.intensity == {} and card.plan == {}


def test_a_semantic_card_round_trips_and_its_label_values_are_checked() -> None:
    card = ModelCard(task="semantic", classes=("background", "organ", "lesion"), label_values=(0, 2, 7),
                     intensity={"scheme": "zscore"}, plan={"spatial_dims": 2})
    again = check_card(card.to_dict(), 1, 3)
    assert again == card and again.label_values == (0, 2, 7)
    for bad in ([0, 2], [0, 2, 2], [0, -1, 3], ["0", "1", "2"]):
        with pytest.raises(ValueError, match="label_values"):
            check_card({**card.to_dict(), "label_values": bad}, 1, 3)
