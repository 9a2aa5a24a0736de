"""Image files: reading and writing
images as uint8 arrays (Pillow), atomic writes, folders of images, the shipped samples, and Pillow's JPEG/WebP/PNG
codecs as the peers every benchmark times in the same run.

Of nkcodec it imports only the format's limits (:func:`~nkcodec.format.limits.check_image`
lives there, re-exported here).
"""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import numpy as np

from .format.limits import MAX_STREAM_CHANNELS, check_image  # noqa: F401  (check_image re-exported: imageio.check_image)

__all__ = ["MODES", "check_image", "read_image", "write_image", "write_atomic", "folder_images", "sample_images", "pillow_codec"]

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # channels -> the Pillow mode read and written


def read_image(path, on_convert=None, deep: bool = False):
    """Read an 8-bit image file as a uint8 array: HxW (L), HxWx2 (LA), HxWx3 (RGB)
    or HxWx4 (RGBA), the mode it has.  Other modes are converted: 1 to L, P to
    RGB (RGBA when it has transparency), PA to RGBA, CMYK, YCbCr, LAB and HSV
    to RGB; ``on_convert(message)`` is told.  An EXIF orientation is applied (the
    image is read as it is shown), and of an animation the first frame is read, both
    told too.  16-bit (PNG of 48 or 64 bits included) and float images raise ValueError,
    unless ``deep``: then 16-bit PNG (1 to 4 channels) and 8- or 16-bit TIFF of up to 16
    channels are read as they are, uint16 or uint8 (:func:`read_deep`)."""
    label = path if isinstance(path, (str, Path)) else getattr(path, "name", "the image")  # not a BytesIO's repr
    try:
        if deep and isinstance(path, (str, Path)) and Path(path).suffix.lower() in (".tif", ".tiff"):
            return read_deep(path, label)
        return _read(path, label, on_convert, deep)
    except OSError as e:  # a damaged file: say which (Pillow's own message may not)
        if str(label) in str(e):
            raise
        raise OSError(f"{label}: {e}") from None


_DEEP_HINT = "nkcodec's near-lossless preset codes 16-bit samples (CLI: --preset near-lossless)"


def _read(path, label, on_convert, deep=False):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        mode, target = im.mode, None
        rawmodes = [str(t[3] if isinstance(t, tuple) else getattr(t, "args", "")) for t in (im.tile or [])]
        sixteen = any(";16" in r for r in rawmodes) or mode.startswith("I;16")
        if sixteen and deep:
            if mode.startswith("I;16"):  # gray: Pillow reads it as it is
                return np.asarray(im).astype(np.uint16)
            im.close()
            return read_deep(path, label)
        if sixteen:  # Pillow opens 48- and 64-bit PNGs as 8-bit RGB(A): refuse, do not clip
            raise ValueError(f"{label}: a 16-bit {mode} image is not 8-bit; {_DEEP_HINT}")
        frames = getattr(im, "n_frames", 1)
        if frames > 1 and on_convert:
            on_convert(f"{label}: {frames} frames; only the first is coded")
        from PIL import ImageOps

        orientation = im.getexif().get(0x0112, 1)  # EXIF Orientation
        if orientation not in (1, None):
            im = ImageOps.exif_transpose(im)
            if on_convert:
                on_convert(f"{label}: EXIF orientation {orientation} applied (the image is coded as it is shown)")
        if mode in ("L", "LA", "RGB", "RGBA"):
            pass
        elif mode == "1":
            target = "L"
        elif mode == "PA" or (mode == "P" and "transparency" in im.info):
            target = "RGBA"
        elif mode in ("P", "CMYK", "YCbCr", "LAB", "HSV"):
            target = "RGB"
        else:
            raise ValueError(f"{label}: image mode {mode!r} is not 8-bit; nkcodec codes 8-bit L, LA, RGB and RGBA")
        if target:
            im = im.convert(target)
            if on_convert:
                hint = "; few colours: --preset palette or rle may be far smaller" if mode in ("1", "P", "PA") else ""
                on_convert(f"{label}: mode {mode} converted to {target}{hint}")
        return np.asarray(im, dtype=np.uint8).copy()


# What a decoded image may be written as, by the output's extension: lossless formats only
# (extension -> Pillow format and its options for a lossless file).
LOSSLESS_FORMATS = {
    ".png": ("PNG", {}),
    ".tif": ("TIFF", {"compression": "tiff_deflate"}),
    ".tiff": ("TIFF", {"compression": "tiff_deflate"}),
    ".webp": ("WEBP", {"lossless": True, "quality": 100, "exact": True}),
    ".bmp": ("BMP", {}),
}
_LOSSY = {".jpg", ".jpeg", ".jpe", ".jfif", ".jp2", ".j2k", ".jxl", ".avif", ".heic", ".gif"}


def read_deep(path, label) -> np.ndarray:
    """A 16-bit PNG (through imagecodecs) or an 8- or 16-bit TIFF of 1 to 16 channels
    (through tifffile) as it is: ValueError for other sample types, or naming the
    extra to install when the library is missing."""
    suffix = Path(path).suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                image, axes = series.asarray(), series.axes
            if image.ndim == 3 and axes[0] in "CS" and axes.endswith("YX"):  # planar: channels first
                image = np.moveaxis(image, 0, 2)
        else:
            import imagecodecs

            image = imagecodecs.png_decode(Path(path).read_bytes())
    except ImportError as e:
        raise ValueError(f"{label}: reading a 16-bit or many-channel {suffix} needs {e.name}: pip install 'nkcodec[deep]'") from None
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{label}: samples of type {image.dtype}; nkcodec codes 1- to 16-bit unsigned integers")
    if image.ndim not in (2, 3):
        raise ValueError(f"{label}: an array of shape {image.shape}; nkcodec codes one image of HxW or HxWxC samples")
    if image.ndim == 3 and image.shape[2] > MAX_STREAM_CHANNELS:
        raise ValueError(f"{label}: {image.shape[2]} channels; nkcodec codes at most {MAX_STREAM_CHANNELS}")
    return np.ascontiguousarray(image)


def image_format(path, channels: int | None = None) -> tuple:
    """(Pillow format, save options) that ``path``'s extension names, for a lossless
    copy of a decoded image of ``channels`` channels (None: not known yet); ValueError
    for a lossy or unknown extension, or BMP for an image with alpha (Pillow's BMP drops it)."""
    suffix = Path(path).suffix.lower()
    choices = ", ".join(LOSSLESS_FORMATS)
    if suffix in LOSSLESS_FORMATS:
        if LOSSLESS_FORMATS[suffix][0] == "BMP" and channels in (2, 4):
            raise ValueError(f"{path}: BMP keeps no alpha plane; write {', '.join(e for e in LOSSLESS_FORMATS if e != '.bmp')}")
        return LOSSLESS_FORMATS[suffix]
    if suffix in _LOSSY:
        raise ValueError(f"{path}: {suffix} is a lossy (or palette) format and would change the decoded pixels; write one of {choices}")
    raise ValueError(f"{path}: unknown image extension {suffix!r}; write one of {choices}")


def write_image(path, image, format=None, **options) -> None:
    """Write a uint8 image (HxW, HxWx1 as L, HxWx2 as LA, HxWx3 as RGB, HxWx4
    as RGBA) with Pillow (``format``: by the file's extension unless given).  A
    uint16 image, or one of more than 4 channels, goes to a 16-bit PNG (1 to 4 channels,
    through imagecodecs but for gray) or a TIFF (tifffile, zlib); other formats keep
    neither, and raise ValueError."""
    from PIL import Image

    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype != np.uint8 or channels > 4:
        fmt = format or LOSSLESS_FORMATS.get(Path(path).suffix.lower(), ("?",))[0]
        _write_deep(path, np.ascontiguousarray(image[..., 0] if channels == 1 and image.ndim == 3 else image), fmt, channels)
        return
    Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image).save(path, format=format, **options)


def check_deep_format(path, image, fmt) -> None:
    """ValueError naming ``path`` unless ``fmt`` (a Pillow format name) can hold ``image``
    exactly: 8-bit images of 1 to 4 channels any lossless format, others TIFF, or PNG up to 4 channels."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if (image.dtype != np.uint8 or channels > 4) and not (fmt == "TIFF" or (fmt == "PNG" and channels <= 4)):
        what = f"a {image.dtype} image of {channels} channel(s)"
        raise ValueError(f"{path}: {fmt} cannot hold {what}; write .tif (any), or .png (16-bit, up to 4 channels)")


def _write_deep(path, image, fmt, channels) -> None:
    what = f"a {image.dtype} image of {channels} channel(s)"
    check_deep_format(path, image, fmt)
    try:
        if fmt == "TIFF":
            import tifffile

            tifffile.imwrite(path, image, compression="zlib", photometric="rgb" if channels in (3, 4) and image.ndim == 3 else "minisblack")
        else:
            import imagecodecs

            Path(path).write_bytes(imagecodecs.png_encode(image))
    except ImportError as e:
        raise ValueError(f"{path}: writing {what} needs {e.name}: pip install 'nkcodec[deep]'") from None


def new_file_mode() -> int:
    """The mode a newly created file gets here: 0o666 less the process' umask."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    import os

    mask = os.umask(0o022)  # read it by setting it (not on Linux: no /proc)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: Path, write) -> None:
    """``write(temporary path)``, then rename it to ``path``: a crash or Ctrl-C
    never leaves a half-written ``path`` (a killed process may leave its hidden
    temporary file, which the next write of ``path`` removes).  ``path`` gets the
    mode a new file gets (0o644 under umask 022), or keeps its own when it exists."""
    import glob
    import os
    import tempfile

    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: folder {path.parent} does not exist")
    try:  # the mode any tool gives a file: an existing file's own, else 0o666 less the umask
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = new_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)  # mkstemp made it 0o600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.part"):  # left by a killed run
        stale.unlink(missing_ok=True)


def sample_images() -> dict:
    """The small images shipped in ``nkcodec/samples`` as {name: uint8 array}."""
    folder = resources.files("nkcodec") / "samples"
    return {p.name: read_image(p) for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(".png")}


def folder_images(folder) -> dict:
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"})
    if not paths:
        raise ValueError(f"no images in {folder}")
    return {p.name: read_image(p) for p in paths}


def pillow_codec(fmt: str, quality: int | None):
    """Pillow's encoder and decoder; ``quality=None``: lossless (PNG, WebP with
    ``lossless=True``), at Pillow's default effort."""
    from PIL import Image

    def enc(img):
        buf = io.BytesIO()
        kw = {"quality": quality} if quality is not None else {}
        if fmt == "JPEG":
            kw.update(optimize=True, subsampling=2)
        elif fmt == "WEBP" and quality is None:
            kw.update(lossless=True)
        Image.fromarray(img).save(buf, format=fmt, **kw)
        return buf.getvalue()

    def dec(data):
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))

    return enc, dec
