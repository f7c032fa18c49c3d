"""Co-register every scene to a reference scene, to a small fraction of a pixel.

Two steps. A masked normalised cross-correlation (Padfield 2012, the algorithm of
scikit-image's ``phase_cross_correlation`` with masks, computed here with real FFTs) finds the
whole-pixel shift while ignoring cloud, shadow and no-data. A robust Gauss-Newton refinement (Lucas & Kanade
1981) then solves for the sub-pixel shift together with a gain and offset, so haze and
satellite-to-satellite radiometry do not pull the estimate. Its Tukey weights give
pixels whose residual is far above the scene's noise no say at all: a burn between the
two dates changes those pixels strongly, so the burn itself cannot bias the shift
(masked phase correlation alone cannot do this, and gives whole pixels only).

Shift convention: a moving scene with shift ``(dy, dx)`` shows at pixel ``(r, c)`` the
ground the reference shows at ``(r - dy, c - dx)``; its content is displaced by ``+dy``
rows and ``+dx`` columns. :func:`undo_shift` moves it back.

References
----------
Lucas, B. D. & Kanade, T. (1981). An iterative image registration technique with an
application to stereo vision. IJCAI'81, 674-679.
Padfield, D. (2012). Masked object registration in the Fourier domain. IEEE Trans. Image
Processing 21(5), 2706-2718.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from dataclasses import dataclass, replace

import numpy as np
import xarray as xr
from scipy import fft, ndimage

from pipeline.cores import fork_map

__all__ = ["ShiftEstimate", "estimate_shift", "confirm_shift", "shift_key", "undo_shift", "apply_shifts", "coregister"]

_TUKEY_C = 4.685  # 95 % efficiency under Gaussian noise
_SMOOTH_SIGMA = 1.0  # px; tames noise and aliasing in the gradients the refinement uses
_STRIDE = 2  # every other pixel each way: a quarter of the pixels is plenty for four unknowns
_COARSE_MIN_PX = 256  # scenes at least twice this on their short side are first correlated at half resolution
_WINDOW_PX = 2048  # larger scenes: the shift is estimated on the clearest window of this size, applied to all
# Below this, the aligned images share too little stable texture for a shift to mean anything
# (the aligned demo scenes correlate at > 0.95; a flat grassland under a large burn at ~0.3).
_MIN_CORRELATION = 0.6


@dataclass(frozen=True)
class ShiftEstimate:
    """Result of registering one scene to the reference.

    Attributes
    ----------
    dy, dx:
        Displacement of the moving scene's content in pixels (see module docstring).
    gain, offset:
        Radiometric fit of the registration band, reference = gain * moving + offset.
    residual:
        Robust RMS of the residual after alignment (band units): the registration quality.
    inlier_fraction:
        Share of compared pixels that kept a non-zero weight (changed ground has none).
    iterations:
        Gauss-Newton iterations used.
    converged:
        Whether the update fell below 1e-4 px before the iteration limit.
    correlation:
        Correlation of the two images over the pixels that kept a weight, after alignment.
    reliable:
        False when the scenes share too little stable texture to be matched (a flat
        grassland, a scene that is mostly change); the shift is then not applied.
    """

    dy: float
    dx: float
    gain: float = 1.0
    offset: float = 0.0
    residual: float = 0.0
    inlier_fraction: float = 1.0
    iterations: int = 0
    converged: bool = True
    correlation: float = 1.0
    reliable: bool = True

    @property
    def ground_matched(self) -> bool:
        """Whether the scene's ground matched the reference's (its correlation at least a reliable estimate's),
        whether or not the shift itself could be trusted."""
        return self.correlation >= _MIN_CORRELATION

    def as_dict(self) -> dict[str, float | int | bool]:
        """JSON-able copy for reports."""
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in self.__dict__.items()}


def _filled(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with masked or non-finite pixels set to the median of the rest."""
    good = mask & np.isfinite(image)
    if good.all():  # nothing to fill: the median would not be used
        return image.astype(np.float64)
    fill = float(np.median(image[good])) if good.any() else 0.0
    return np.where(good, image, fill).astype(np.float64)


def _halved(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2 x 2 block means, and a mask true where all four pixels were usable."""
    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    blocks = image[:h, :w].reshape(h // 2, 2, w // 2, 2)
    return blocks.mean(axis=(1, 3)), mask[:h, :w].reshape(h // 2, 2, w // 2, 2).all(axis=(1, 3))


def masked_correlation(fixed: np.ndarray, moving: np.ndarray, fixed_mask: np.ndarray, moving_mask: np.ndarray, *,
                       overlap_ratio: float, max_lag: int | None = None) -> np.ndarray:
    """Masked normalised cross-correlation of two real images at every lag (Padfield 2012), ``"full"`` size.

    The sums of Padfield's formula computed with real FFTs: the same numbers as scikit-image's
    ``cross_correlate_masked`` (to rounding) in a quarter to a ninth of its time on 320-552 px
    squares, since its complex FFTs of real images spend half their work on a mirror image of the
    other half, and its products and quotients are complex too. Lags where the masks
    overlap on fewer than ``overlap_ratio`` of the largest overlap read 0.

    ``max_lag``: only the lags up to that many pixels each way, the window of the full
    correlation around its zero lag (:func:`zero_lag_at` says where it lies; the largest overlap
    is the window's): the same numbers there, to rounding, from transforms about half as long
    each way, as no lag beyond the window wraps onto one inside it.
    """
    fixed = np.where(fixed_mask, fixed, 0.0).astype(np.float64)
    moving = np.where(moving_mask, moving, 0.0)[::-1, ::-1].astype(np.float64)  # rotated: a convolution correlates
    fixed_m = fixed_mask.astype(np.float64)
    moving_m = moving_mask[::-1, ::-1].astype(np.float64)
    lengths, window = _lag_lengths(fixed.shape, moving.shape, max_lag)
    fast = tuple(fft.next_fast_len(n, real=True) for n in lengths)
    shape = tuple(s.stop - s.start for s in window)

    def spectrum(a: np.ndarray) -> np.ndarray:
        return fft.rfft2(a, s=fast)

    def convolved(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return fft.irfft2(a * b, s=fast)[window]

    f, m, fm, mm = spectrum(fixed), spectrum(moving), spectrum(fixed_m), spectrum(moving_m)
    eps = np.finfo(np.float64).eps
    overlap = np.fmax(np.round(convolved(mm, fm)), eps)
    fixed_sum = convolved(mm, f)
    moving_sum = convolved(fm, m)
    numerator = convolved(m, f) - fixed_sum * moving_sum / overlap
    fixed_denom = np.fmax(convolved(mm, spectrum(fixed * fixed)) - fixed_sum * fixed_sum / overlap, 0.0)
    moving_denom = np.fmax(convolved(fm, spectrum(moving * moving)) - moving_sum * moving_sum / overlap, 0.0)
    denom = np.sqrt(fixed_denom * moving_denom)
    out = np.zeros(shape)
    usable = denom > 1e3 * eps * denom.max()
    out[usable] = np.clip(numerator[usable] / denom[usable], -1.0, 1.0)
    out[overlap < overlap_ratio * overlap.max()] = 0.0
    return out


def _lag_lengths(fixed_shape: tuple[int, ...], moving_shape: tuple[int, ...],
                 max_lag: int | None) -> tuple[tuple[int, ...], tuple[slice, ...]]:
    """Per axis, the shortest transform that holds the lags wanted, and their window in its output.

    The zero lag sits at ``moving - 1`` of the full correlation (``fixed + moving - 1`` long). A
    circular transform of length ``n`` folds lag ``i`` onto ``i - n`` and ``i + n``: with ``n`` at
    least ``max(fixed, moving) + max_lag`` none of the full correlation's other lags lands within
    ``max_lag`` of zero. Where that is no shorter than the full length, the axis is kept whole.
    """
    if max_lag is not None and max_lag < 0:
        raise ValueError(f"max_lag must be 0 or more, not {max_lag}")
    lengths, window = [], []
    for a, b in zip(fixed_shape, moving_shape):
        full = a + b - 1
        if max_lag is None or max(a, b) + max_lag >= full:
            lengths.append(full)
            window.append(slice(0, full))
        else:
            lengths.append(max(a, b) + max_lag)
            window.append(slice(b - 1 - max_lag, b + max_lag))
    return tuple(lengths), tuple(window)


def zero_lag_at(fixed_shape: tuple[int, ...], moving_shape: tuple[int, ...], max_lag: int | None) -> np.ndarray:
    """Where the zero lag sits in :func:`masked_correlation`'s output for these shapes and ``max_lag``."""
    _, window = _lag_lengths(fixed_shape, moving_shape, max_lag)
    return np.array([b - 1 - s.start for b, s in zip(moving_shape, window)])


_PEAK_MARGIN_PX = 2  # lags correlated beyond the search limit, so that a peak past it is seen as past it


def _whole_pixel_shift(ref: np.ndarray, mov: np.ndarray, ref_mask: np.ndarray, mov_mask: np.ndarray, *,
                       max_shift_px: float) -> np.ndarray:
    """Displacement of ``mov`` relative to ``ref`` to about a pixel, by masked cross-correlation.

    Large scenes are correlated at half resolution (a quarter of the work, the search range
    kept): the estimate is then good to about a pixel, which is all the sub-pixel refinement
    that follows needs as a start. Only lags up to the search limit (and a margin) are
    correlated: a start beyond the limit is not used. Equal peaks are averaged.
    """
    factor = 2 if min(ref.shape) >= 2 * _COARSE_MIN_PX else 1
    if factor == 2:
        ref, ref_mask = _halved(ref, ref_mask)
        mov, mov_mask = _halved(mov, mov_mask)
    max_lag = int(np.ceil(max(max_shift_px, 0.0) / factor)) + _PEAK_MARGIN_PX if np.isfinite(max_shift_px) else None
    correlation = masked_correlation(mov, ref, mov_mask, ref_mask, overlap_ratio=0.5, max_lag=max_lag)
    peak = np.mean(np.argwhere(correlation == correlation.max()), axis=0)
    return factor * np.round(peak - zero_lag_at(mov.shape, ref.shape, max_lag))


def _robust_scale(residual: np.ndarray) -> float:
    """Gaussian-consistent scale from the median absolute deviation."""
    mad = np.median(np.abs(residual - np.median(residual)))
    return float(max(1.4826 * mad, 1e-6))


def estimate_shift(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    reference_mask: np.ndarray | None = None,
    moving_mask: np.ndarray | None = None,
    max_shift_px: float = 40.0,
    max_iterations: int = 60,
) -> ShiftEstimate:
    """Sub-pixel displacement of ``moving`` relative to ``reference``.

    Parameters
    ----------
    reference, moving:
        2-D images of the same band on the same grid (NaN = no data).
    reference_mask, moving_mask:
        True where a pixel may be used (clear ground); default: finite pixels.
    max_shift_px:
        Search limit; a whole-pixel shift beyond it raises ``ValueError``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ground = ndimage.gaussian_filter(rng.random((128, 128)), 2)
    >>> moved = ndimage.shift(ground, (2.3, -1.6), order=3, mode="nearest")
    >>> est = estimate_shift(ground, moved)
    >>> round(est.dy, 1), round(est.dx, 1)
    (2.3, -1.6)
    """
    sampled, ref, mov, ref_mask, mov_mask = _prepared(reference, moving, reference_mask, moving_mask)
    # Two starting points: the cross-correlation peak, and no shift at all. A large burn or a
    # flat scene can put the peak on the change itself; the start whose refinement explains
    # the stable ground better (smaller robust residual) wins.
    starts = [np.zeros(2)]
    peak = _whole_pixel_shift(ref, mov, ref_mask, mov_mask, max_shift_px=max_shift_px)
    if np.all(np.abs(peak) <= max_shift_px) and np.any(peak != 0):
        starts.insert(0, peak)
    results = [sampled.refine(start, max_iterations) for start in starts]
    best = min(results, key=lambda r: (r.residual, -r.inlier_fraction))
    too_far = abs(best.dy) > max_shift_px or abs(best.dx) > max_shift_px
    if too_far or not best.converged or best.correlation < _MIN_CORRELATION:
        return replace(best, reliable=False)
    return best


def _prepared(reference: np.ndarray, moving: np.ndarray, reference_mask: np.ndarray | None,
              moving_mask: np.ndarray | None) -> tuple["_Sampler", np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The refinement's sampler and the smoothed images and masks, as :func:`estimate_shift` uses them."""
    if reference.shape != moving.shape or reference.ndim != 2:
        raise ValueError("reference and moving must be 2-D images of the same shape")
    ref_mask = np.isfinite(reference) if reference_mask is None else (reference_mask & np.isfinite(reference))
    mov_mask = np.isfinite(moving) if moving_mask is None else (moving_mask & np.isfinite(moving))
    if ref_mask.sum() < 100 or mov_mask.sum() < 100:
        raise ValueError("too few clear pixels to co-register (fewer than 100)")
    ref = ndimage.gaussian_filter(_filled(reference, ref_mask), _SMOOTH_SIGMA)
    mov = ndimage.gaussian_filter(_filled(moving, mov_mask), _SMOOTH_SIGMA)
    # Smoothing drags fill values a few pixels into the data: keep only pixels clear of that.
    ref_ok = ndimage.binary_erosion(ref_mask, iterations=3)
    mov_ok = ndimage.binary_erosion(mov_mask, iterations=3).astype(np.float64)

    keep = ref_ok[::_STRIDE, ::_STRIDE]
    return _Sampler(mov, mov_ok, keep, ref[::_STRIDE, ::_STRIDE][keep]), ref, mov, ref_mask, mov_mask


_CONFIRM_PX = 1e-4  # a refinement step from a kept shift must stay this close to it (the convergence step)


def shift_key(reference: np.ndarray, moving: np.ndarray, *, reference_mask: np.ndarray, moving_mask: np.ndarray,
              max_shift_px: float) -> str:
    """SHA-256 of everything :func:`estimate_shift` reads: both images and masks, bit for bit, and the search limit.

    Equal keys mean an estimate made before would come out the same (with the same code: a
    keeper of estimates adds its code version), so a re-run of the same scenes can reuse it.
    """
    digest = hashlib.sha256(b"burnscan estimate_shift")
    for array in (reference, moving, reference_mask, moving_mask):
        digest.update(f"{array.dtype.str}{array.shape}".encode("ascii"))
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(float(max_shift_px)).encode("ascii"))
    return digest.hexdigest()


def confirm_shift(reference: np.ndarray, moving: np.ndarray, estimate: ShiftEstimate, *, reference_mask: np.ndarray,
                  moving_mask: np.ndarray, max_shift_px: float = 40.0) -> bool:
    """Whether a kept ``estimate`` is one :func:`estimate_shift` could have stopped at on these images.

    A reliable estimate sits where the refinement no longer moves: one step from it must stay
    within ``_CONFIRM_PX`` and find the same correlation, at least the correlation a reliable
    match needs, within the search limit. A shift edited by hand, or kept from other images,
    moves or correlates differently and is estimated again. Costs one step, not the search.
    """
    if not (estimate.reliable and estimate.converged and estimate.correlation >= _MIN_CORRELATION
            and abs(estimate.dy) <= max_shift_px and abs(estimate.dx) <= max_shift_px):
        return False
    try:
        sampled = _prepared(reference, moving, reference_mask, moving_mask)[0]
    except ValueError:
        return False
    step = sampled.refine(np.array([estimate.dy, estimate.dx]), 1, radiometry=(estimate.gain, estimate.offset))
    return bool(step.correlation >= _MIN_CORRELATION and abs(step.dy - estimate.dy) < _CONFIRM_PX
                and abs(step.dx - estimate.dx) < _CONFIRM_PX and abs(step.correlation - estimate.correlation) < _CONFIRM_PX)


class _Sampler:
    """The moving image prepared for repeated sub-pixel sampling at the reference's pixels.

    The reference's pixels are every :data:`_STRIDE`-th pixel each way where ``keep`` holds.
    All of them move by the same shift, so every one has the same interpolation weights: the
    cubic B-spline and the bilinear samples are two passes of 4 (or 2) weighted slices of the
    padded arrays, one along the columns and one along the rows, instead of
    ``ndimage.map_coordinates`` working out 16 (or 4) weights per pixel. The same numbers to
    rounding (1e-14 of the values) in a third of the time. A shift beyond the padding, which no
    search limit lets the refinement reach, is sampled by ``map_coordinates`` itself.
    """

    def __init__(self, mov: np.ndarray, mov_ok: np.ndarray, keep: np.ndarray, target: np.ndarray):
        grad_r, grad_c = np.gradient(mov)
        # The modes of the samples below: "nearest" repeats the edge, "constant" reads 0 outside.
        self._coeffs = np.pad(ndimage.spline_filter(mov, order=3), _SAMPLE_PAD, mode="edge")
        self._linear = (np.pad(grad_r, _SAMPLE_PAD, mode="edge"), np.pad(grad_c, _SAMPLE_PAD, mode="edge"),
                        np.pad(mov_ok, _SAMPLE_PAD, mode="constant"))
        self.shape, self.keep, self.target = mov.shape, keep, target

    def sample(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """At every kept pixel moved by ``d``: the cubic B-spline value of the moving image, whether
        it lies inside the usable moving pixels (bilinear mask over 0.999), and the two gradients
        (bilinear), as ``map_coordinates`` gives them with modes "nearest" and "constant"."""
        whole = np.floor(d)
        if np.any(np.abs(whole) > _SAMPLE_PAD - 3):
            return self._sampled_by_scipy(d)
        (ty, tx), (iy, ix) = d - whole, whole.astype(int)
        n_r, n_c = self.keep.shape
        cubic = _strided_sum(self._coeffs, iy - 1, ix - 1, _cubic_bspline(ty), _cubic_bspline(tx), n_r, n_c)
        linear = [_strided_sum(padded, iy, ix, np.array([1.0 - ty, ty]), np.array([1.0 - tx, tx]), n_r, n_c)
                  for padded in self._linear]
        # "constant" reads cval at a sample outside the image, however close to its edge.
        y = np.arange(n_r) * float(_STRIDE) + d[0]
        x = np.arange(n_c) * float(_STRIDE) + d[1]
        outside = ((y < 0) | (y > self.shape[0] - 1))[:, None] | ((x < 0) | (x > self.shape[1] - 1))[None, :]
        inside = (linear[2] > 0.999) & ~outside
        keep = self.keep
        return cubic[keep], inside[keep], linear[0][keep], linear[1][keep]

    def _sampled_by_scipy(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rows, cols = np.nonzero(self.keep)
        coords = np.vstack([rows * float(_STRIDE) + d[0], cols * float(_STRIDE) + d[1]])
        inner = (slice(_SAMPLE_PAD, -_SAMPLE_PAD),) * 2
        sampled = ndimage.map_coordinates(self._coeffs[inner], coords, order=3, prefilter=False, mode="nearest")
        inside = ndimage.map_coordinates(self._linear[2][inner], coords, order=1, mode="constant", cval=0.0) > 0.999
        gr, gc = (ndimage.map_coordinates(self._linear[k][inner], coords, order=1, mode="nearest") for k in (0, 1))
        return sampled, inside, gr, gc

    def refine(self, start: np.ndarray, max_iterations: int, radiometry: tuple[float, float] | None = None) -> ShiftEstimate:
        """Robust Gauss-Newton from ``start`` for (dy, dx, gain, offset); the gain and offset start from
        ``radiometry`` when given, else from a straight-line fit at ``start``."""
        d = np.asarray(start, dtype=float).copy()
        target = self.target
        gain, offset = radiometry if radiometry is not None else (1.0, 0.0)
        weights = np.zeros_like(target)
        converged, iteration, scale = False, 0, float("inf")
        for iteration in range(1, max_iterations + 1):
            sampled, inside, gr, gc = self.sample(d)
            if inside.sum() < 50:
                break
            if iteration == 1 and radiometry is None:
                gain, offset = np.polyfit(sampled[inside], target[inside], 1)
            residual = target - (gain * sampled + offset)
            scale = _robust_scale(residual[inside])
            u = residual / (_TUKEY_C * scale)
            weights = np.where(inside & (np.abs(u) < 1.0), (1.0 - u * u) ** 2, 0.0)
            jac = np.column_stack([gain * gr, gain * gc, sampled, np.ones_like(sampled)])
            wj = jac * weights[:, None]
            try:
                step = np.linalg.solve(wj.T @ jac, wj.T @ residual)
            except np.linalg.LinAlgError:
                break
            step[:2] = np.clip(step[:2], -0.5, 0.5)  # a linearisation is only good within a pixel
            d = d + step[:2]
            gain, offset = gain + step[2], offset + step[3]
            if np.all(np.abs(step[:2]) < 1e-4):
                converged = True
                break
        used = weights > 0
        correlation = float(np.corrcoef(target[used], sampled[used])[0, 1]) if used.sum() > 2 and iteration > 0 else 0.0
        return ShiftEstimate(
            dy=float(d[0]),
            dx=float(d[1]),
            gain=float(gain),
            offset=float(offset),
            residual=float(scale),
            inlier_fraction=float(used.mean()) if weights.size else 0.0,
            iterations=iteration,
            converged=converged,
            correlation=correlation if np.isfinite(correlation) else 0.0,
        )


_SAMPLE_PAD = 96  # px around the moving image: a start within the 40 px search limit, then steps of 0.5 px at most


def _cubic_bspline(t: float) -> np.ndarray:
    """The four cubic B-spline weights of the pixels at -1, 0, +1, +2 from a sample ``t`` (0 <= t < 1) past pixel 0."""
    return np.array([(1 - t) ** 3, 3 * t ** 3 - 6 * t ** 2 + 4, -3 * t ** 3 + 3 * t ** 2 + 3 * t + 1, t ** 3]) / 6.0


def _strided_sum(padded: np.ndarray, row: int, col: int, row_weights: np.ndarray, col_weights: np.ndarray,
                 n_r: int, n_c: int) -> np.ndarray:
    """``out[k, l] = sum_ij row_weights[i] col_weights[j] image[row + i + S k, col + j + S l]`` for
    ``S`` = :data:`_STRIDE`, from ``image`` padded by :data:`_SAMPLE_PAD`: the columns first, then the rows."""
    r0, c0, stride = _SAMPLE_PAD + row, _SAMPLE_PAD + col, _STRIDE
    block = padded[r0:r0 + stride * (n_r - 1) + len(row_weights)]
    across = _weighted_sum(col_weights, [block[:, c0 + j:c0 + j + stride * (n_c - 1) + 1:stride]
                                         for j in range(len(col_weights))])
    return _weighted_sum(row_weights, [across[i:i + stride * (n_r - 1) + 1:stride] for i in range(len(row_weights))])


def _weighted_sum(weights: np.ndarray, slices: list[np.ndarray]) -> np.ndarray:
    """``sum(w * s for w, s in zip(weights, slices))``, added in place in the same order: the same numbers, with one
    temporary instead of two a term (this sampling is most of a refinement step)."""
    out = np.multiply(slices[0], weights[0])
    term = np.empty_like(out)
    for w, piece in zip(weights[1:], slices[1:]):
        out += np.multiply(piece, w, out=term)
    return out


def undo_shift(image: np.ndarray, dy: float, dx: float, *, support: np.ndarray | None = None) -> np.ndarray:
    """Move displaced content back by ``(-dy, -dx)``; pixels with no source become NaN.

    Cubic-spline resampling keeps sub-pixel detail; non-finite input pixels are filled
    for the interpolation and then re-masked with everything they touched. ``support`` is
    :func:`shifted_support` of the image's finite pixels, where the caller has it already
    (every band of a scene is finite on the same pixels).
    """
    finite = np.isfinite(image)
    filled = _filled(image, finite)
    moved = _cubic_translate(filled, dy, dx)
    if support is None:
        support = shifted_support(finite, dy, dx)
    return np.where(support > 0.999, moved, np.nan).astype(image.dtype if image.dtype.kind == "f" else np.float32)


_SPLINE_PAD = 12  # scipy's own padding of an image before its spline prefilter in mode "nearest"


def _cubic_translate(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``ndimage.shift(image, (-dy, -dx), order=3, mode="nearest")``, computed as a translation.

    The cubic spline at a constant offset is four taps along each axis with the same weights for
    every pixel, where scipy evaluates sixteen per pixel with their weights: the same spline
    (the same padding and prefilter), within 1e-14, equal to scipy's once stored as float32 on
    the images tested, at under half the time. Shifts beyond the padding go to scipy.
    """
    if not max(abs(dy), abs(dx)) < _SPLINE_PAD - 2:
        return ndimage.shift(image, (-dy, -dx), order=3, mode="nearest")
    coefficients = ndimage.spline_filter(np.pad(image, _SPLINE_PAD, mode="edge"), order=3, output=np.float64, mode="nearest")
    return _spline_taps(_spline_taps(coefficients, dy, axis=0), dx, axis=1)


def _spline_taps(coefficients: np.ndarray, d: float, *, axis: int) -> np.ndarray:
    """The cubic B-spline of ``coefficients`` (padded by :data:`_SPLINE_PAD`) at ``i + d`` along ``axis``, padding dropped."""
    whole = int(np.floor(d))
    f = d - whole
    weights = ((1 - f) ** 3 / 6, (4 - 6 * f * f + 3 * f ** 3) / 6, (1 + 3 * f + 3 * f * f - 3 * f ** 3) / 6, f ** 3 / 6)
    length = coefficients.shape[axis] - 2 * _SPLINE_PAD
    start = _SPLINE_PAD + whole - 1
    def tap(k: int) -> np.ndarray:
        return weights[k] * coefficients[(slice(None),) * axis + (slice(start + k, start + k + length),)]

    out = tap(0)
    for k in (1, 2, 3):  # added in place, in order: one temporary at a time, not four
        out += tap(k)
    return out


def shifted_support(finite: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """How much of each moved pixel's source had data: the ``finite`` mask moved as :func:`undo_shift` moves an image."""
    return ndimage.shift(finite.astype(np.float64), (-dy, -dx), order=1, mode="constant", cval=0.0)


def apply_shifts(stack: xr.Dataset, estimates: list[ShiftEstimate]) -> xr.Dataset:
    """Move every scene with a reliable shift onto the reference's pixels.

    Kept apart from the estimation so that a shift measured once on a whole scene can be
    applied to each of its chunks; pixels without data after the move are NaN and not clear.
    """
    refl = stack["reflectance"].values
    clear = stack["clear"].values
    moving = [t for t, est in enumerate(estimates) if est.reliable and (est.dy != 0.0 or est.dx != 0.0)]

    def move(t: int) -> tuple[np.ndarray, np.ndarray]:
        est = estimates[t]
        finite = np.isfinite(refl[t])
        # Bands finite on the same pixels (the rule) share one moved support: the same numbers, computed once.
        shared = shifted_support(finite[0], est.dy, est.dx) if (finite == finite[0]).all() else None
        bands = np.stack([undo_shift(refl[t, b], est.dy, est.dx, support=shared) for b in range(refl.shape[1])])
        if clear[t].all():
            # A mask clear everywhere moves to 1 (to rounding) wherever the move has a source, and a moved band is
            # finite only where its source was all there: the moved bands alone say which pixels are clear.
            return bands, np.all(np.isfinite(bands), axis=0)
        moved_clear = undo_shift(clear[t].astype(np.float32), est.dy, est.dx)
        return bands, (np.nan_to_num(moved_clear, nan=0.0) > 0.999) & np.all(np.isfinite(bands), axis=0)

    out_refl, out_clear = refl.copy(), clear.copy()
    # The rest (the reference, or no trustworthy shift) stays where its geolocation puts it.
    for t, (bands, seen) in zip(moving, fork_map(lambda i: move(moving[i]), len(moving))):
        out_refl[t], out_clear[t] = bands, seen
    result = stack.copy(data={"reflectance": out_refl, "clear": out_clear})
    return result.assign_coords(shift_dy=("time", [e.dy for e in estimates]), shift_dx=("time", [e.dx for e in estimates]))


def _estimation_window(common_clear: np.ndarray, size: int) -> tuple[slice, slice]:
    """The whole scene when it is small; else the ``size`` x ``size`` window, among a 3 x 3
    grid of candidates, with the most ground clear on both scenes.

    A scene-wide translation (a PlanetScope or Sentinel-2 scene's misregistration) is
    measured as well on a few million clear pixels as on a hundred million, at a fraction
    of the time and memory.
    """
    h, w = common_clear.shape
    if h <= size and w <= size:
        return slice(None), slice(None)
    rows = np.linspace(0, max(h - size, 0), 3).astype(int)
    cols = np.linspace(0, max(w - size, 0), 3).astype(int)
    best = max(((r, c) for r in rows for c in cols),
               key=lambda rc: int(common_clear[rc[0]:rc[0] + size, rc[1]:rc[1] + size].sum()))
    return slice(best[0], best[0] + size), slice(best[1], best[1] + size)


def coregister(
    stack: xr.Dataset,
    *,
    reference_index: int = 0,
    band: str = "red",
    max_shift_px: float = 40.0,
    known: MutableMapping[str, ShiftEstimate] | None = None,
) -> tuple[xr.Dataset, list[ShiftEstimate]]:
    """Register every scene of ``stack`` to scene ``reference_index``.

    Returns the stack with every band and the ``clear`` mask moved onto the reference's
    pixels (pixels without data after the move are NaN and not clear), and one
    :class:`ShiftEstimate` per scene (zero for the reference).

    ``known`` keeps reliable estimates between runs under :func:`shift_key`: a scene whose
    key is there and whose kept shift :func:`confirm_shift` accepts is not searched again
    (the search is most of a village run's co-registration); new reliable estimates are
    added. The scenes whose shift was reused are listed in ``attrs["shifts_reused"]``.
    """
    if band not in stack.band.values:
        raise ValueError(f"co-registration band {band!r} is not in the stack (bands: {list(stack.band.values)})")
    refl = stack["reflectance"]
    clear = stack["clear"]
    ref_band = refl.isel(time=reference_index).sel(band=band).values
    ref_clear = clear.isel(time=reference_index).values

    def inputs(t: int) -> dict[str, np.ndarray]:
        mov_clear = clear.isel(time=t).values
        window = _estimation_window(ref_clear & mov_clear, _WINDOW_PX)
        return {"reference": ref_band[window], "moving": refl.isel(time=t).sel(band=band).values[window],
                "reference_mask": ref_clear[window], "moving_mask": mov_clear[window]}

    moving = [t for t in range(refl.sizes["time"]) if t != reference_index]
    keys = {t: shift_key(**inputs(t), max_shift_px=max_shift_px) for t in moving} if known is not None else {}

    def estimate(t: int) -> tuple[ShiftEstimate, bool]:
        if t == reference_index:
            return ShiftEstimate(0.0, 0.0), False
        images = inputs(t)
        kept = known.get(keys[t]) if known is not None else None
        if kept is not None and confirm_shift(**images, estimate=kept, max_shift_px=max_shift_px):
            return kept, True
        try:
            return estimate_shift(**images, max_shift_px=max_shift_px), False
        except ValueError:  # too little clear ground in common to match at all
            return ShiftEstimate(0.0, 0.0, converged=False, correlation=0.0, reliable=False), False

    found = fork_map(estimate, refl.sizes["time"])  # scenes are independent: one per core
    estimates = [e for e, _ in found]
    if known is not None:
        for t in moving:
            if estimates[t].reliable and not found[t][1]:
                known[keys[t]] = estimates[t]
    result = apply_shifts(stack, estimates)
    result.attrs["coregistered_to"] = str(stack.scene_id.values[reference_index])
    result.attrs["shifts_reused"] = [str(stack.scene_id.values[t]) for t in moving if found[t][1]]
    return result, estimates
