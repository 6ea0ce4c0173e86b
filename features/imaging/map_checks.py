"""Is a NIfTI map usable? Reading it, its grid against the atlas, and its values.

A map (FA, MD, AD, RD, QSM or a modulated GM segment) must be one 3D volume in
MNI152 2 mm space, on the grid of :func:`features.imaging.atlas.load_atlas`:
:func:`check_map` says why one is not. :func:`check_values` says whether its values
are plausible for its kind (units, range, empty maps). A ``.nii.gz`` file is
decompressed in one call, which is faster than nibabel's streamed read. The region
reduction itself is :mod:`features.imaging.region_stats`.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from features.errors import ImageMismatchError
from features.imaging.atlas import Atlas

__all__ = [
    "AFFINE_TOLERANCE_MM",
    "KINDS",
    "OUTLIER_FRACTION",
    "check_map",
    "check_values",
]

#: Map kinds this module knows; used in messages and as the Series name. "GM" is a
#: modulated grey-matter segment (GM fraction times the Jacobian, unitless).
KINDS: tuple[str, ...] = ("FA", "MD", "AD", "RD", "QSM", "GM")

#: Largest allowed difference between a map's affine and the atlas's, in mm.
AFFINE_TOLERANCE_MM = 1e-3
#: The most a map may hold once decompressed (a 0.5 mm whole-brain float64 map is
#: ~0.5 GiB): the header's declared size is checked before anything is inflated.
MAX_MAP_BYTES = 2 << 30

RESAMPLE_FIX = (
    "Resample the map to MNI152 2 mm (e.g. with nilearn.image.resample_to_img onto "
    "atlas.template_img) or pass resample=True."
)

#: Share of brain voxels that may lie outside a kind's plausible range (noise,
#: interpolation ringing at the brain edge) before :func:`check_values` raises.
OUTLIER_FRACTION = 0.01

#: Plausible median diffusivity over the brain, in mm^2/s (typical: ~0.0007-0.001).
_DIFFUSIVITY_MM2_S = (1e-4, 1e-2)

#: Other units a diffusivity map is written in: name, value in those units of
#: 1 mm^2/s, and how to convert back to mm^2/s.
_DIFFUSIVITY_UNITS = (
    ("10^-3 mm^2/s (x1000)", 1e3, "divide the map by 1000"),
    ("um^2/s (10^-6 mm^2/s, x1000000)", 1e6, "divide the map by 1000000"),
    ("m^2/s (x0.000001)", 1e-6, "multiply the map by 1000000"),
    ("cm^2/s (x0.01)", 1e-2, "multiply the map by 100"),
)

_KIND_NAMES = {
    "FA": "fractional anisotropy",
    "MD": "mean diffusivity",
    "AD": "axial diffusivity",
    "RD": "radial diffusivity",
    "QSM": "susceptibility (ppb)",
    "GM": "modulated grey-matter",
}


def check_map(
    img: nib.spatialimages.SpatialImage, atlas: Atlas, *, path: str, kind: str
) -> None:
    """Check that a map is one 3D volume on the atlas grid.

    A 4D image whose trailing dimensions are 1 counts as 3D.

    Parameters
    ----------
    img : nibabel image
        The loaded map.
    atlas : Atlas
        From :func:`features.imaging.atlas.load_atlas`.
    path : str
        File the map came from, for messages.
    kind : {"FA", "MD", "AD", "RD", "QSM", "GM"}
        Map kind, for messages.

    Raises
    ------
    ValueError
        If ``kind`` is unknown.
    ImageMismatchError
        If the map is not 3D, or its shape or affine (beyond
        :data:`AFFINE_TOLERANCE_MM`) differs from the atlas's.

    Examples
    --------
    >>> check_map(nib.load("sub-01_FA.nii.gz"), atlas, path="sub-01_FA.nii.gz",
    ...           kind="FA")  # doctest: +SKIP
    """
    check_kind(kind)
    shape_3d(img, path=path, kind=kind)
    problem = grid_problem(img, atlas)
    if problem:
        raise ImageMismatchError(f"{path}: {kind} map {problem}. {RESAMPLE_FIX}")


def check_values(
    data: np.ndarray, brain_mask: np.ndarray, *, kind: str, path: str
) -> None:
    """Check that a map's values inside the brain are plausible for its kind.

    Over the brain voxels with a finite value (``present``: also non-zero):

    * every kind: some voxel must be finite and non-zero;
    * FA: at most :data:`OUTLIER_FRACTION` of voxels outside ``[-0.01, 1.01]``;
    * MD, AD, RD (mm^2/s): the median of ``present`` must be positive and lie in
      ``[1e-4, 1e-2]`` (typically ~0.0007); x1000 unit mix-ups (10^-3 mm^2/s,
      um^2/s, ...) are recognised and named;
    * QSM (ppb): the 99th percentile of ``|present|`` must be at least 1 (a map in
      ppm spans about 0.1);
    * GM (modulated): at most :data:`OUTLIER_FRACTION` of voxels below -0.01 or
      above 1.5.

    Parameters
    ----------
    data : numpy.ndarray
        The map on the atlas grid (any float dtype).
    brain_mask : numpy.ndarray
        Boolean brain mask of the same shape (e.g. from ``atlas.brain_mask_img``).
    kind : {"FA", "MD", "AD", "RD", "QSM", "GM"}
        Map kind; picks the rule.
    path : str
        File the map came from, for messages.

    Raises
    ------
    ValueError
        If ``kind`` is unknown or the mask's shape differs from the map's.
    ImageMismatchError
        If the values are implausible; the message names the file, the kind, the
        offending statistic and the fix.

    Examples
    --------
    >>> mask = np.ones((4, 4, 4), dtype=bool)
    >>> check_values(np.full((4, 4, 4), 0.45), mask, kind="FA", path="fa.nii.gz")
    >>> check_values(np.full((4, 4, 4), 0.8), mask, kind="MD", path="md.nii.gz")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    features.errors.ImageMismatchError: md.nii.gz: MD map has median 0.8 ...
    """
    check_kind(kind)
    data = np.asarray(data)
    mask = np.asarray(brain_mask, dtype=bool)
    if data.shape != mask.shape:
        raise ValueError(
            f"{path}: {kind} map has shape {data.shape} but the brain mask has shape "
            f"{mask.shape}. Pass the map on the atlas grid (region_stats(..., "
            "resample=True) resamples it)."
        )
    check_brain_values(data[mask], kind=kind, path=path)


def check_brain_values(values: np.ndarray, *, kind: str, path: str) -> None:
    """:func:`check_values` on the map's brain voxels, already gathered."""
    finite = values[np.isfinite(values)]
    present = finite[finite != 0]
    where = f"{path}: {kind} map"
    if present.size == 0:
        raise ImageMismatchError(
            f"{where} is zero or NaN everywhere in the MNI152 brain mask; it holds "
            f"no {_KIND_NAMES[kind]} values. Check that the file is "
            "this subject's map and that it was written in MNI space (a native-space "
            "map with an MNI header can fall outside the brain)."
        )
    if kind == "FA":
        _check_fa(finite, where)
    elif kind in ("MD", "AD", "RD"):
        _check_diffusivity(present, where)
    elif kind == "QSM":
        spread = float(np.percentile(np.abs(present), 99))
        if spread < 1.0:
            raise ImageMismatchError(
                f"{where}: the 99th percentile of |susceptibility| over brain voxels "
                f"is {spread:.3g}; in ppb it is tens to hundreds (deep grey matter "
                "~50-200 ppb), so the map looks like ppm (x1000 mix-up). Multiply "
                "it by 1000 to get ppb."
            )
    elif kind == "GM":
        _check_gm(finite, where)


def _outside(values: np.ndarray, low: float, high: float) -> float:
    """Fraction of ``values`` outside ``[low, high]``."""
    return float(np.count_nonzero((values < low) | (values > high)) / values.size)


def _check_fa(finite: np.ndarray, where: str) -> None:
    """Raise unless FA lies in [0, 1] up to noise."""
    share = _outside(finite, -0.01, 1.01)
    if share <= OUTLIER_FRACTION:
        return
    low, high = np.percentile(finite, [1, 99])
    fix = (
        "It looks scaled by 1000 (stored as 0-1000): divide it by 1000."
        if 1.01 < high <= 1010 and low >= -10
        else "Check that the file is an FA map (not MD, a tensor component or a "
        "T1 image)."
    )
    raise ImageMismatchError(
        f"{where}: {share:.1%} of brain voxels lie outside [-0.01, 1.01] (1st-99th "
        f"percentile {low:.3g} to {high:.3g}); FA is a fraction in [0, 1]. {fix}"
    )


def _check_diffusivity(present: np.ndarray, where: str) -> None:
    """Raise unless the median diffusivity is plausible in mm^2/s; name the units."""
    median = float(np.median(present))
    low, high = _DIFFUSIVITY_MM2_S
    if low <= median <= high:
        return
    stat = (
        f"{where} has median {median:.3g} over brain voxels with a finite non-zero "
        f"value; in mm^2/s it is about 0.0007 (plausible {low:g} to {high:g})"
    )
    if median <= 0:
        raise ImageMismatchError(
            f"{stat}. Diffusivities are positive: check the file is a diffusivity "
            "map and was not sign-flipped or z-scored."
        )
    for unit, factor, fix in _DIFFUSIVITY_UNITS:
        if low * factor <= median <= high * factor:
            raise ImageMismatchError(
                f"{stat}. It looks like {unit}: {fix} to get mm^2/s."
            )
    raise ImageMismatchError(
        f"{stat}. Check the map's units and that it is a diffusivity map; convert "
        "it to mm^2/s."
    )


def _check_gm(finite: np.ndarray, where: str) -> None:
    """Raise unless modulated GM is >= 0 and mostly <= 1.5."""
    negative = float(np.count_nonzero(finite < -0.01) / finite.size)
    if negative > OUTLIER_FRACTION:
        raise ImageMismatchError(
            f"{where}: {negative:.1%} of brain voxels are below -0.01 (minimum "
            f"{finite.min():.3g}); modulated grey-matter values are >= 0. Pass the "
            "modulated GM segment (e.g. CAT12 mwp1, SPM mwc1), not a log-Jacobian, "
            "z-score or difference map."
        )
    above = float(np.count_nonzero(finite > 1.5) / finite.size)
    if above > OUTLIER_FRACTION:
        high = float(np.percentile(finite, 99))
        fix = (
            "It looks like percent: divide it by 100."
            if high <= 150
            else "It looks like an intensity image: pass the modulated GM segment "
            "(e.g. CAT12 mwp1, SPM mwc1)."
        )
        raise ImageMismatchError(
            f"{where}: {above:.1%} of brain voxels exceed 1.5 (99th percentile "
            f"{high:.3g}); modulated grey matter is a GM fraction times the Jacobian, "
            f"mostly <= 1.5. {fix}"
        )


def check_kind(kind: str) -> None:
    """Raise if ``kind`` is not a known map kind."""
    if kind not in KINDS:
        raise ValueError(
            f"kind = {kind!r} is not a known map kind; use one of {KINDS}."
        )


def map_source(img_or_path: object) -> str:
    """The file name to quote in messages."""
    if isinstance(img_or_path, str | os.PathLike):
        return os.fspath(img_or_path)
    name = getattr(img_or_path, "get_filename", lambda: None)()
    return name or "<in-memory image>"


def load_map(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
    *,
    path: str,
    kind: str,
) -> nib.spatialimages.SpatialImage:
    """Load a path (``.nii.gz`` in one decompression, else nibabel); pass an
    image. A complex-valued map is refused (casting would drop a part silently)."""
    if not isinstance(img_or_path, str | os.PathLike):
        return _real_valued(img_or_path, path, kind)
    try:
        if path.endswith(".nii.gz"):
            return _real_valued(_load_nii_gz(path), path, kind)
        return _real_valued(nib.load(img_or_path), path, kind)
    except (ImageFileError, HeaderDataError, EOFError, zlib.error) as err:
        raise ImageMismatchError(
            f"{path}: cannot read the {kind} map as a NIfTI image ({err}). Pass a "
            ".nii or .nii.gz file."
        ) from err
    except gzip.BadGzipFile as err:
        raise ImageMismatchError(
            f"{path}: cannot read the {kind} map: it is not gzip-compressed ({err}). "
            "If it is an uncompressed NIfTI file, rename it to .nii or gzip it."
        ) from err
    except _TooLarge as err:
        raise ImageMismatchError(
            f"{path}: the {kind} map {err}; it was not read. A map holds one "
            f"volume of at most {MAX_MAP_BYTES >> 30} GiB: check the file (a damaged "
            "or hostile header, or the wrong file)."
        ) from None


def _real_valued(img, path: str, kind: str):
    dtype = img.get_data_dtype()
    if np.issubdtype(dtype, np.complexfloating):
        raise ImageMismatchError(
            f"{path}: the {kind} map holds complex values ({dtype}); a {kind} map is "
            "real-valued. Pass the real map the pipeline writes (e.g. the "
            "susceptibility or FA map), not a complex image."
        )
    return img


class _TooLarge(Exception):
    """A compressed NIfTI file that would inflate beyond what it may hold."""


def _load_nii_gz(path: str) -> nib.spatialimages.SpatialImage:
    """Read a gzipped NIfTI-1 or -2 file, decompressing all of it in one call."""
    with open(path, "rb") as handle:
        compressed = handle.read()
    if compressed[:2] != b"\x1f\x8b":
        raise gzip.BadGzipFile(f"starts with {compressed[:2]!r}, not the gzip magic")
    head = zlib.decompressobj(wbits=31).decompress(compressed, 540)
    declared = _declared_bytes(head)
    if declared > MAX_MAP_BYTES:
        raise _TooLarge(
            f"header declares {declared / 2**30:.1f} GiB of image data, more than "
            f"the {MAX_MAP_BYTES >> 30} GiB limit"
        )
    # what the header declares, plus room for padding some writers add
    raw = _inflate(compressed, declared + (1 << 20) if declared else MAX_MAP_BYTES)
    sizes = {int.from_bytes(raw[:4], order) for order in ("little", "big")}
    if 348 in sizes:
        return nib.Nifti1Image.from_bytes(raw)
    if 540 in sizes:
        return nib.Nifti2Image.from_bytes(raw)
    raise ImageFileError(
        f"header size {int.from_bytes(raw[:4], 'little')} is neither 348 (NIfTI-1) "
        "nor 540 (NIfTI-2)"
    )


def _declared_bytes(head: bytes) -> int:
    """Header offset plus voxel count times voxel size, from a NIfTI header's bytes
    (0 when they are not a NIfTI header: the full read then says why)."""
    for header in (nib.Nifti1Header, nib.Nifti2Header):
        if len(head) < header.sizeof_hdr:
            continue
        try:
            hdr = header.from_fileobj(
                io.BytesIO(head[: header.sizeof_hdr]), check=False
            )
            shape = hdr.get_data_shape()
            itemsize = hdr.get_data_dtype().itemsize
            offset = int(hdr.get_data_offset())
        except (HeaderDataError, ValueError, TypeError, OverflowError):
            continue
        if int(hdr["sizeof_hdr"]) == header.sizeof_hdr:
            return offset + int(np.prod(shape, dtype=object)) * itemsize
    return 0


def _inflate(data: bytes, limit: int) -> bytes:
    """Every gzip member of ``data`` decompressed (bgzip writes several), CRC
    checked; :class:`_TooLarge` past ``limit`` bytes, before inflating more."""
    out = bytearray()
    while data:
        inflate = zlib.decompressobj(wbits=31)
        out += inflate.decompress(data, limit + 1 - len(out))
        if len(out) > limit:
            raise _TooLarge("decompresses to more than its header declares")
        if not inflate.eof:
            raise EOFError("the compressed file ends early (truncated?)")
        data = inflate.unused_data
        if data[:2] != b"\x1f\x8b":
            break  # trailing bytes after the last member, as gzip ignores zeros
    return bytes(out)


def shape_3d(
    img: nib.spatialimages.SpatialImage, *, path: str, kind: str
) -> tuple[int, ...]:
    """The map's shape without trailing singleton dimensions; raise if not 3D."""
    shape = tuple(int(n) for n in img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise ImageMismatchError(
            f"{path}: {kind} map has shape {shape}; expected one 3D volume. Pass a "
            "single volume (e.g. nilearn.image.index_img(img, 0)) or the mean map."
        )
    return shape


def grid_problem(img: nib.spatialimages.SpatialImage, atlas: Atlas) -> str:
    """Describe how the map's grid differs from the atlas's, or return ''."""
    shape = tuple(int(n) for n in img.shape[:3])
    if shape != atlas.shape:
        return (
            f"has shape {shape} and affine {_fmt(img.affine)}, but the atlas "
            f"(MNI152 2 mm) has shape {atlas.shape} and affine {_fmt(atlas.affine)}"
        )
    if not np.allclose(img.affine, atlas.affine, rtol=0, atol=AFFINE_TOLERANCE_MM):
        return (
            f"has affine {_fmt(img.affine)}, but the atlas (MNI152 2 mm) has affine "
            f"{_fmt(atlas.affine)} (tolerance {AFFINE_TOLERANCE_MM:g} mm; shape "
            f"{atlas.shape} matches)"
        )
    return ""


def _fmt(affine: np.ndarray) -> str:
    """Affine as a compact one-line list of its top three rows."""
    return str(np.round(np.asarray(affine)[:3], 3).tolist())
