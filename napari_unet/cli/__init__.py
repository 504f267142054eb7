"""The ``napari-unet`` command line: one module per subcommand over the core functions.

:func:`napari_unet.cli.main.main` is the console script; ``python -m napari_unet.cli`` runs it too.
"""
