"""Undo the sensor's blur on a map of burned shares, so a burn one or two pixels across keeps its edge.

A pixel does not see only its own square of ground: the optics and the detector spread each
point over its neighbours (the point-spread function, PSF). On a 3 m grid that moves a whole
compound's rim by a fraction of one of its many pixels. A compound on a 10 or 20 m grid, or a
partly caught one on a 3 m grid, is one or two pixels across, and the blur is as wide as the
burn: a pixel wholly burned reads 0.6-0.8 burned beside unburned ground, and its unburned
neighbour 0.2-0.3. Cut at half a pixel, such a burn loses its burned pixels or gains its
neighbours, whatever the cut.

The burned share is linear in reflectance (:mod:`pipeline.stages.fraction`), so it is blurred
as the scene is: ``f_read = psf * f_true``. A few Van Cittert iterations [1]_,
``g <- g + (f_read - psf * g)``, each held to ``[0, 1]`` (a share is never negative nor more
than the pixel), put back most of what the blur took, without the noise gain of a full inverse
filter. The PSF is a Gaussian of ``sigma_px`` grid pixels beyond the pixel's own square: 0.5,
with the square, gives a modulation transfer of about 0.2 at the Nyquist frequency, inside the
0.15-0.3 that Sentinel-2's specification states for its bands. Unfitted pixels (NaN: no
before-state, or beyond the candidates and their ring) are read as unburned for the
convolution and stay NaN.

.. [1] Van Cittert, P. H. (1931). Zum Einfluss der Spaltbreite auf die Intensitatsverteilung in
   Spektrallinien II. Zeitschrift fur Physik 69, 298-308; as in Jansson, P. A. (ed.) (1997).
   Deconvolution of Images and Spectra, Academic Press, ch. 3.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["undo_blur", "ITERATIONS"]

ITERATIONS = 3
"""Van Cittert iterations: enough to restore a two-pixel burn's core, few enough not to amplify noise."""


def undo_blur(fraction: np.ndarray, sigma_px: float, *, iterations: int = ITERATIONS) -> np.ndarray:
    """``fraction`` (``(y, x)``, NaN where not fitted) with a Gaussian PSF of ``sigma_px`` pixels undone.

    ``sigma_px`` 0 returns a copy. A flat field is unchanged; a burn blurred by the PSF comes
    back closer to its own outline.

    >>> f = np.zeros((9, 9)); f[3:5, 3:5] = 1.0
    >>> read = ndimage.gaussian_filter(f, 0.5)
    >>> round(float(read[3, 3]), 2), round(float(undo_blur(read, 0.5)[3, 3]), 2)
    (0.8, 0.99)
    >>> float(undo_blur(np.full((5, 5), 0.3), 0.5)[2, 2])
    0.3
    """
    if sigma_px <= 0:
        return np.array(fraction, dtype=np.float64, copy=True)
    fitted = np.isfinite(fraction)
    read = np.where(fitted, np.clip(fraction, 0.0, 1.0), 0.0)
    restored = read.copy()
    for _ in range(iterations):
        restored = np.clip(restored + (read - ndimage.gaussian_filter(restored, sigma_px)), 0.0, 1.0)
    return np.where(fitted, restored, np.nan)
