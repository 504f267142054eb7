"""Teaching a network: samples, augmentation, targets, losses, batches, the engine, scores.

- :mod:`.sources`: where training images come from (arrays, folders, the generator).
- :mod:`.augment`, :mod:`.targets`, :mod:`.losses`: jittered windows, class maps and weights, the loss.
- :mod:`.batches`: windows cut, augmented and stacked into a step's batch.
- :mod:`.engine`: the training loop as a generator (budgets, schedule, checkpoints).
- :mod:`.metrics`, :mod:`.evaluation`, :mod:`.holdout`: AP matching, scoring a model, held-out squares
  in two halves.
"""
