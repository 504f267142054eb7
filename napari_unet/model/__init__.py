"""The network and its files: the U-Net, its card, model files, training checkpoints.

- :mod:`.unet`: :class:`~.unet.UNet` (2D, or 3D with pooling planned from the voxel
  spacing by :func:`~.unet.plan_pools`) and its :class:`~.unet.UNetConfig`.
- :mod:`.card`: :class:`~.card.ModelCard`, what a model means (task, classes, normalisation).
- :mod:`.files`: safetensors model files (load, save, header), the shipped models.
- :mod:`.checkpoint`: resume state of a training run.
- :mod:`.export`: BioImage Model Zoo packages, ONNX and TorchScript; :mod:`.bioimageio`
  reads such packages back.
"""
