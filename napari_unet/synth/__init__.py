"""Generated images with exact labels, for training, tests, benchmarks and the sample data.

- :mod:`.config`: :class:`~.config.SynthConfig`, the ranges each image draws from.
- :mod:`.objects`: placing, shaping and rasterising the nuclei of an image.
- :mod:`.images`: one image (:func:`~.images.synth_image`) or a seeded set of them.
- :mod:`.volumes`: confocal-like 3D stacks of nuclei (anisotropic spacing and blur,
  attenuation with depth) with exact 3D labels.
- :mod:`.phantom`: abdomen-like MR/CT volumes with a tissue-class map (body, organ, fluid, lesion).
- :mod:`.sample`: napari's File › Open Sample: the nuclei image and the MR/CT phantoms with their class maps.
"""
