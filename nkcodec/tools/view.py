"""``python -m nkcodec view``: the paper's GUI (its Fig. 4) as a local web page.

A small server from the standard library (``http.server``, one thread per
request, bound to 127.0.0.1 unless ``--host`` says otherwise) serves the page
shipped in ``nkcodec/viewer/`` (plain HTML, CSS and JavaScript: no build step,
no network) and a JSON API:

* ``POST /api/encode?preset=&quality=&max_error=&effort=`` with an image file
  as the body: the figures of :func:`figures` (the same functions as the API:
  ``nkcodec.compress``, ``decompress`` and ``nkcodec.metrics``), the
  reconstruction, its error map, JPEG and WebP at the size nearest to
  nkcodec's, the image's rate-distortion points and the ``.nkc`` stream;
* ``POST /api/open`` with a ``.nkc`` stream: what it decodes to and its ``info``;
* ``GET /api/samples`` and ``GET /api/sample?name=``: the shipped samples.

Uploads are capped in bytes (``MAX_UPLOAD``) and pixels (``MAX_PIXELS``); a
non-image or corrupt stream gets a 4xx with a one-line message, never a
traceback.  The server never reads a path a request names: the page's files
and the samples are looked up in fixed tables.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlparse

import numpy as np

__all__ = ["figures", "encode_view", "open_view", "make_server", "serve", "MAX_UPLOAD", "MAX_PIXELS"]

MAX_UPLOAD = 32 << 20  # bytes of one upload
MAX_PIXELS = 24_000_000  # pixels of an uploaded image
_PAGE = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript"), "/style.css": ("style.css", "text/css")}
_LOCK = threading.Lock()  # one encode at a time: the nets already use every core
_RD_CACHE: dict = {}  # (image digest, preset, options) -> rate-distortion points: once per image, not per step
_RD_CACHE_SIZE = 8
_LATEST: dict = {}  # page id -> the newest request number it sent: older ones are superseded
_LATEST_LOCK = threading.Lock()


class Superseded(Exception):
    """A newer request of the same page came in: this one's answer would be thrown away."""


class BadRequest(Exception):
    """A request the page must be told about: (HTTP status, one-line message)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _png(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _read_upload(data: bytes) -> np.ndarray:
    from PIL import Image

    from ..imageio import read_image

    if not data:
        raise BadRequest(400, "empty upload")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
        if w * h > MAX_PIXELS:
            raise BadRequest(413, f"image of {w}x{h} pixels is larger than this viewer's cap of {MAX_PIXELS / 1e6:.0f} MPix")
        return read_image(io.BytesIO(data))
    except BadRequest:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        import re

        said = re.sub(r"<_io\.\w+ object at 0x[0-9a-fA-F]+>", "the upload", str(e))  # not the server's object names
        raise BadRequest(400, f"not an image this viewer can read ({e.__class__.__name__}: {said})") from None


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """What JPEG and WebP are given: the RGB of RGB(A), gray (with or without alpha) repeated."""
    a = image.reshape(image.shape[0], image.shape[1], -1)
    return np.ascontiguousarray(a[..., :3] if a.shape[2] >= 3 else np.repeat(a[..., :1], 3, axis=2))


def _error_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    err = np.abs(a.astype(np.int16) - b.astype(np.int16))
    err = err.max(axis=2) if err.ndim == 3 else err
    return np.minimum(err * 8, 255).astype(np.uint8)  # |error| x 8, as gray


def figures(image: np.ndarray, data: bytes, decoded: np.ndarray, encode_s: float, decode_s: float) -> dict:
    """The page's figures for one coded image, computed by nkcodec's own functions."""
    from .. import metrics

    err = np.abs(image.astype(np.int16) - decoded.astype(np.int16))
    psnr = metrics.psnr(image, decoded)
    return {
        "bytes": len(data),
        "bpp": metrics.bpp(data, image),
        "cr": metrics.compression_ratio(data, image),
        "psnr": None if psnr == float("inf") else psnr,
        "mse": metrics.mse(image, decoded),
        "max_error": int(err.max()),
        "encode_ms": 1000 * encode_s,
        "decode_ms": 1000 * decode_s,
    }


def _peer_at_size(image: np.ndarray, fmt: str, target: int):
    """Pillow's ``fmt`` at the quality whose file size is nearest to ``target`` bytes:
    (quality, bytes, decoded image)."""
    from ..imageio import pillow_codec

    rgb = _as_rgb(image)
    best, lo, hi = None, 1, 100
    while lo <= hi:  # sizes grow with quality: bisect, keeping the nearest
        q = (lo + hi) // 2
        enc, dec = pillow_codec(fmt, q)
        data = enc(rgb)
        if best is None or abs(len(data) - target) < abs(len(best[1]) - target):
            best = (q, data, dec)
        if len(data) < target:
            lo = q + 1
        else:
            hi = q - 1
    q, data, dec = best
    return q, data, rgb, dec(data)


def encode_view(
    upload: bytes, preset: str = "default", quality: int = 4, max_error: int | None = None, effort: int | None = None, rd: bool = True, stale=None
) -> dict:
    """Everything the page shows for an uploaded image and settings.  ``stale()`` says
    whether a newer request has come in: the work stops at the next step (Superseded).
    The rate-distortion points are computed once per image and settings."""
    import inspect

    import nkcodec
    from nkcodec.presets import ALIASES, PRESETS

    image = _read_upload(upload)
    # the page's settings that this preset takes (its signature says which); others are left out
    cls = PRESETS.get(ALIASES.get(preset, preset))
    takes = inspect.signature(cls).parameters if cls is not None else {}
    options = {}
    if "max_error" in takes and max_error is not None:
        options["max_error"] = max_error
    if "effort" in takes and effort:
        options["effort"] = effort
    try:
        codec = nkcodec.Codec(quality, preset, **options)
    except ValueError as e:
        raise BadRequest(400, str(e)) from None

    def check():
        if stale is not None and stale():
            raise Superseded()

    check()
    with _LOCK:
        check()
        t = time.perf_counter()
        data = codec.encode(image)
        t_enc = time.perf_counter() - t
        t = time.perf_counter()
        decoded = nkcodec.decompress(data)
        t_dec = time.perf_counter() - t
        out = {"figures": figures(image, data, decoded, t_enc, t_dec), "width": image.shape[1], "height": image.shape[0]}
        out["original"] = _png(image)
        out["decoded"] = _png(decoded)
        out["error_map"] = _png(_error_map(image, decoded))
        out["nkc"] = base64.b64encode(data).decode()
        check()
        out["peers"] = _peers(image, data, codec, options)
        if rd and codec.impl.quality_ladder and max(image.shape[:2]) <= 1024:
            import hashlib

            key = (hashlib.sha256(upload).hexdigest(), codec.preset, tuple(sorted(options.items())))
            if key not in _RD_CACHE:
                check()
                _RD_CACHE[key] = _rd_points(image, preset, options, check)
                while len(_RD_CACHE) > _RD_CACHE_SIZE:
                    _RD_CACHE.pop(next(iter(_RD_CACHE)))
            out["rd"] = _RD_CACHE[key]
        elif rd:
            out["rd_note"] = f"{codec.preset} has no quality ladder: no rate-distortion curve"
    return out


def _peers(image: np.ndarray, data: bytes, codec, options: dict) -> dict:
    """The codecs to compare with: for a lossy preset, JPEG and WebP at the size nearest to
    nkcodec's; for a bounded-error or lossless one, lossless PNG and WebP, and JPEG-LS at
    the same bound where imagecodecs is installed."""
    from .. import metrics

    pixels = image.shape[0] * image.shape[1]

    def entry(label, quality, setting, pdata, ref, pdec):
        psnr = metrics.psnr(ref, pdec)
        return {
            "label": label,
            "quality": quality,  # Pillow's quality (an int) for the same-size peers, else None
            "setting": setting,
            "bytes": len(pdata),
            "bpp": 8 * len(pdata) / pixels,
            "psnr": None if psnr == float("inf") else psnr,  # JSON has no infinity
            "image": _png(pdec),
        }

    peers = {}
    if codec.impl.quality_ladder:
        for name, fmt in (("jpeg", "JPEG"), ("webp", "WEBP")):
            q, pdata, ref, pdec = _peer_at_size(image, fmt, len(data))
            peers[name] = entry(f"{name.upper() if name == 'jpeg' else 'WebP'}, same size", q, f"q{q}", pdata, ref, pdec)
        return peers
    from PIL import Image

    rgb = _as_rgb(image)
    for name, fmt, opts in (("png", "PNG", {"optimize": True}), ("webp", "WEBP", {"lossless": True, "quality": 100})):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt, **opts)
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            peers[name] = entry(f"{'PNG' if name == 'png' else 'WebP'} lossless", None, "lossless", buf.getvalue(), rgb, np.asarray(im.convert("RGB")))
    bound = options.get("max_error", 1) if codec.preset == "near-lossless" else 0
    try:
        import imagecodecs

        pdata = imagecodecs.jpegls_encode(rgb, level=bound)
        peers["jpegls"] = entry(f"JPEG-LS, max error {bound}", None, f"near={bound}", pdata, rgb, imagecodecs.jpegls_decode(pdata))
    except (ImportError, AttributeError):  # imagecodecs is optional (the eval extra)
        pass
    return peers


def _rd_points(image: np.ndarray, preset: str, options: dict, check=lambda: None) -> dict:
    """bpp and PSNR of nkcodec at every quality, and of JPEG and WebP at a few."""
    import nkcodec

    from .. import metrics
    from ..imageio import pillow_codec

    rgb = _as_rgb(image)
    pts = {"nkcodec": [], "jpeg": [], "webp": []}
    for q in range(1, 9):
        check()
        data = nkcodec.compress(image, q, preset, **options)
        pts["nkcodec"].append([metrics.bpp(data, image), metrics.psnr(image, nkcodec.decompress(data))])
    for name, fmt in (("jpeg", "JPEG"), ("webp", "WEBP")):
        for q in (10, 30, 50, 70, 90):
            enc, dec = pillow_codec(fmt, q)
            data = enc(rgb)
            pts[name].append([8 * len(data) / (rgb.shape[0] * rgb.shape[1]), metrics.psnr(rgb, dec(data))])
    return pts


def open_view(data: bytes) -> dict:
    """What a ``.nkc`` upload decodes to, and its ``info``."""
    import nkcodec

    from ..errors import NkcodecError
    from ..format.container import unpack_container

    if not data:
        raise BadRequest(400, "empty upload")
    try:
        header, sections = unpack_container(data)
        t = time.perf_counter()
        with _LOCK:
            decoded = nkcodec.decompress(data)
        t_dec = time.perf_counter() - t
    except NkcodecError as e:  # CorruptStreamError, RetiredModelError
        raise BadRequest(422, str(e)) from None
    except ValueError as e:
        raise BadRequest(400, str(e)) from None
    info = {
        "size": f"{header.width}x{header.height}, {header.channels} channel(s)",
        "preset": header.preset,
        "quality": header.quality,
        "model_id": header.model_id,
        "params": header.params,
        "sections": [len(s) for s in sections],
        "bytes": len(data),
        "bpp": 8 * len(data) / header.num_pixels,
        "decode_ms": 1000 * t_dec,
    }
    return {"info": info, "decoded": _png(decoded), "width": header.width, "height": header.height}


class _Handler(BaseHTTPRequestHandler):
    server_version = "nkcodec-view"

    def log_message(self, fmt, *args):  # quiet: one line per error only
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the page went on without this answer
            self.close_connection = True

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        if url.path in _PAGE:  # a fixed table: no path from the request is ever read
            name, ctype = _PAGE[url.path]
            return self._send(200, (resources.files("nkcodec") / "viewer" / name).read_bytes(), ctype)
        if url.path == "/favicon.ico":  # no icon: say so without an error
            return self._send(204, b"", "image/x-icon")
        if url.path == "/api/samples":
            return self._json(200, sorted(_samples()))
        if url.path == "/api/sample":
            name = parse_qs(url.query).get("name", [""])[0]
            samples = _samples()
            if name not in samples:
                return self._json(404, {"error": f"no sample named {name!r}"})
            return self._send(200, samples[name].read_bytes(), "image/png")
        return self._json(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        url = urlparse(self.path)
        try:
            text = self.headers.get("Content-Length") or "0"
            if not text.strip().isdigit():  # "abc", "-1": refused, never read (a negative length would wait forever)
                self.close_connection = True
                raise BadRequest(400, f"Content-Length must be a number of bytes, got {text!r:.40}")
            length = int(text)
            if length > MAX_UPLOAD:
                raise BadRequest(413, f"upload of {length} bytes is larger than the cap of {MAX_UPLOAD >> 20} MiB")
            body = self.rfile.read(length)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/api/encode":
                page, number = q.get("page"), _int(q, "seq", None)
                stale = None
                if page is not None and number is not None:
                    with _LATEST_LOCK:
                        _LATEST[page] = max(_LATEST.get(page, number), number)
                        while len(_LATEST) > 256:
                            _LATEST.pop(next(iter(_LATEST)))

                    def stale():
                        return _LATEST.get(page, number) > number

                result = encode_view(
                    body,
                    q.get("preset", "default"),
                    _int(q, "quality", 4),
                    _int(q, "max_error", None),
                    _int(q, "effort", None),
                    q.get("rd", "1") == "1",
                    stale,
                )
            elif url.path == "/api/open":
                result = open_view(body)
            else:
                raise BadRequest(404, "not found")
            return self._json(200, result)
        except BadRequest as e:
            return self._json(e.status, {"error": str(e)})
        except Superseded:
            return self._json(409, {"error": "superseded by a newer request of this page"})
        except Exception as e:  # a bug: still one line, and the server goes on
            print(f"nkcodec view: {e.__class__.__name__}: {e}", file=sys.stderr)
            return self._json(500, {"error": f"internal error ({e.__class__.__name__})"})


def _int(q: dict, key: str, default):
    if key not in q or q[key] == "":
        return default
    try:
        return int(q[key])
    except ValueError:
        raise BadRequest(400, f"{key} must be an integer, got {q[key]!r}") from None


def _samples() -> dict:
    folder = resources.files("nkcodec") / "samples"
    return {p.name: p for p in folder.iterdir() if p.name.endswith(".png")}


def make_server(host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """The viewer's server (not started); ``port=0`` picks a free one."""
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    return server


def serve(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False) -> int:
    """Run the viewer until Ctrl-C."""
    server = make_server(host, port)
    url = f"http://{host}:{server.server_address[1]}/"
    print(f"nkcodec view: {url} (Ctrl-C stops it)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
