"""Real 16-bit images for ``eval --lossless --deep``: the MRI volumes that ship in
``nibabel``'s test data (the ``eval`` extra), as 2-D slices.

Each volume's stored integers are read as they are (no scaling).  A volume with
negative values is shifted up by its minimum, so that every sample is a uint16;
the shift is a lossless relabelling, and every codec sees the same arrays.  Nothing
here is fitted or tuned on: the coder's prior was counted on 8-bit training photos.

Examples
--------
>>> images = deep_images()  # doctest: +SKIP
>>> sorted({im.dtype.name for im in images.values()})  # doctest: +SKIP
['uint16']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["VOLUMES", "deep_images", "deep_stacks"]

# nibabel test files; 4-D volumes are taken one volume (time point) after another
VOLUMES = (
    "example4d.nii.gz",  # EPI, 128x96, 24 slices x 2 volumes, 0..1162
    "anatomical.nii",  # T1, 33x41 (a coarse anatomical), 25 slices, -610..30393 (shifted up)
    "example_nifti2.nii.gz",  # 32x20, 12 slices x 2 volumes
    "phantom_EPI_asc_CLEAR_2_1.PAR",  # Philips PAR/REC phantom, 64x64, 9 slices x 3 dynamics, uint16
)


def _volume(name: str) -> np.ndarray:
    import nibabel

    path = Path(nibabel.__file__).parent / "tests" / "data" / name
    img = nibabel.load(str(path))
    data = np.asarray(img.dataobj.get_unscaled()) if hasattr(img.dataobj, "get_unscaled") else np.asarray(img.dataobj)
    if data.dtype.kind not in "iu":
        raise ValueError(f"{name}: stored samples are {data.dtype}, not integers")
    data = data.astype(np.int64)
    data -= min(0, int(data.min()))
    if int(data.max()) >= 1 << 16:
        raise ValueError(f"{name}: samples span more than 16 bits")
    return data.astype(np.uint16)


def _slices(vol: np.ndarray) -> np.ndarray:
    """H x W x slices, the slices of each time point together."""
    if vol.ndim == 4:
        vol = vol.transpose(0, 1, 3, 2)
    return vol.reshape(vol.shape[0], vol.shape[1], -1)


def deep_images() -> dict:
    """{name: uint16 HxW slice} of every slice of :data:`VOLUMES` (needs ``nibabel``:
    ``pip install "nkcodec[eval]"``)."""
    out = {}
    for name in VOLUMES:
        rest = _slices(_volume(name))
        for k in range(rest.shape[2]):
            out[f"{name}:{k:03d}"] = np.ascontiguousarray(rest[:, :, k])
    return out


def deep_stacks(depth: int = 8) -> dict:
    """{name: uint16 HxWx``depth``} of ``depth`` neighbouring slices of each volume of
    :data:`VOLUMES` as the channels of one image (as a microscope's z-stack or a
    multispectral image is kept): the same samples as :func:`deep_images` where the
    slices divide evenly, to show what coding neighbouring slices against each other gives."""
    out = {}
    for name in VOLUMES:
        rest = _slices(_volume(name))
        for k in range(0, rest.shape[2] - depth + 1, depth):
            out[f"{name}:{k:03d}+{depth}"] = np.ascontiguousarray(rest[:, :, k : k + depth])
    return out
