"""Everything that imports Qt, magicgui, superqt or napari's widgets; the core never does.

- :mod:`.session`: one shared :class:`~.session.Session` per viewer (models, device,
  cached predictions), found with :func:`~.session.session_for`; :mod:`.edits` records
  where the user corrected labels.
- :mod:`.segment`, :mod:`.click`, :mod:`.finetune`: one folder per dock widget.
- :mod:`.pickers`, :mod:`.widgets`: parts the widgets share (layer, model and device
  pickers; the status line, combo and spin boxes).
- :mod:`.layers`: reading image layers for the core and writing masks back (undoable).
- :mod:`.jobs`, :mod:`.threads`: core generators in napari workers, at background priority.
- :mod:`._napari`: every touch of napari internals; :mod:`._perf`: the measured speed
  workarounds, behind one switch.
- :mod:`.demo`: ``napari-unet demo``.
"""
