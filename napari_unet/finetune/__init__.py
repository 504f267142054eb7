"""Fine-tuning on a user's corrections: what counts as annotated, and teaching each network.

- :mod:`.regions`: the annotated region of a correction, objects to learn from, merging a refresh.
- :mod:`.segmentation`: fine-tuning a copy of the segmentation model.
- :mod:`.clicks`: fine-tuning a copy of the click network with simulated clicks.
- :mod:`.both`: both networks in one budget.
"""
