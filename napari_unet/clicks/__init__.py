"""Click to segment: an object's mask from clicks on it, refined by more clicks.

- :mod:`.types`: a :class:`~.types.Click` and an :class:`~.types.ObjectMask` (a mask in a window).
- :mod:`.segmenter`: the click network's answer to clicks on one 2D image.
- :mod:`.volume`: clicks through the planes of a volume (3D objects), and the ray of napari's 3D view.
- :mod:`.edits`: what writing an answer into a label plane changes.
- :mod:`.protocol`: the simulated user of the literature (where it clicks, NoC).
- :mod:`.batches`, :mod:`.train`: training the click network with simulated clicks.
"""
