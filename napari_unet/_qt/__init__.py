"""Everything that imports Qt or napari's widgets; the core (``napari_unet.*``) never does.

- :mod:`.session`: one shared :class:`~.session.Session` per viewer (model, device,
  cached predictions), found with :func:`~.session.session_for`.
- :mod:`.segment_widget`: the Segment dock widget.
- :mod:`.pickers`, :mod:`.settings`: its parts, reusable by other widgets.
- :mod:`.layers`: reading image layers for the core and writing masks back (undoable).
- :mod:`.jobs`: core generators run in napari workers with a progress bar.
"""
