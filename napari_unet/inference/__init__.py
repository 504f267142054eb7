"""From an image to labels: layouts and normalisation, tiling, prediction, instances, zoom.

- :mod:`.images`: any dtype and layout in, normalised (N, C, Y, X) planes out.
- :mod:`.tiling`: where sliding-window tiles go and how they blend.
- :mod:`.predict`: tiled prediction of class probabilities on any device.
- :mod:`.instances`: probabilities to instance labels (watershed) or a class map.
- :mod:`.zoom`: the magnification at which the network sees an image.
- :mod:`.segment`: one call from an image to labels.
"""
