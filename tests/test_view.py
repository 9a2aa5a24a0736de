"""The viewer's server (nkcodec.tools.view): status codes for bad uploads, the caps,
and figures equal to the library's."""

import base64
import io
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

import nkcodec
from nkcodec import metrics
from nkcodec.tools import view

from .test_learned import photo


@pytest.fixture(scope="module")
def server():
    srv = view.make_server("127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _request(url, data=None):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read(), r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type")


def _png_bytes(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_page_and_samples(server):
    status, body, ctype = _request(server + "/")
    assert status == 200 and b"nkcodec viewer" in body and ctype.startswith("text/html")
    assert _request(server + "/app.js")[0] == 200 and _request(server + "/style.css")[0] == 200
    status, body, _ = _request(server + "/api/samples")
    names = json.loads(body)
    assert status == 200 and names and all(n.endswith(".png") for n in names)
    status, body, ctype = _request(server + "/api/sample?name=" + names[0])
    assert status == 200 and ctype == "image/png" and body[:4] == b"\x89PNG"


@pytest.mark.parametrize("path", ["/../pyproject.toml", "/api/sample?name=../../pyproject.toml", "/api/sample?name=/etc/passwd", "/nkcodec/view.py"])
def test_no_path_from_a_request_is_read(server, path):
    assert _request(server + path)[0] == 404


@pytest.mark.parametrize(
    "settings", ["preset=default&quality=3", "preset=near-lossless&max_error=2", "preset=near-lossless&max_error=0&effort=2", "preset=rle"]
)
def test_figures_equal_the_librarys(server, settings):
    img = photo((40, 56, 3))
    status, body, _ = _request(server + "/api/encode?" + settings + "&rd=0", _png_bytes(img))
    assert status == 200
    res = json.loads(body)
    q = dict(kv.split("=") for kv in settings.split("&"))
    options = {k: int(q[k]) for k in ("max_error", "effort") if k in q}
    data = nkcodec.compress(img, int(q.get("quality", 4)), q["preset"], **options)
    out = nkcodec.decompress(data)
    f = res["figures"]
    assert base64.b64decode(res["nkc"]) == data
    assert f["bytes"] == len(data) and f["bpp"] == metrics.bpp(data, img) and f["cr"] == metrics.compression_ratio(data, img)
    psnr = metrics.psnr(img, out)
    assert f["psnr"] == (None if psnr == float("inf") else psnr) and f["mse"] == metrics.mse(img, out)
    assert f["max_error"] == int(np.abs(img.astype(int) - out).max())
    if q["preset"] == "default":  # a lossy preset: JPEG and WebP at the same size
        for name in ("jpeg", "webp"):
            assert 1 <= res["peers"][name]["quality"] <= 100 and res["peers"][name]["image"].startswith("data:image/png;base64,")
    else:  # bounded error: lossless peers (exact), and JPEG-LS at the same bound where imagecodecs is installed
        assert {"png", "webp"} <= set(res["peers"])
        assert res["peers"]["png"]["psnr"] is None and res["peers"]["webp"]["psnr"] is None
        if "jpegls" in res["peers"]:
            assert res["peers"]["jpegls"]["setting"] == f"near={options.get('max_error', 0)}"


def test_rd_points(server):
    status, body, _ = _request(server + "/api/encode?quality=4", _png_bytes(photo((32, 48, 3))))
    rd = json.loads(body)["rd"]
    assert status == 200 and len(rd["nkcodec"]) == 8 and len(rd["jpeg"]) == len(rd["webp"]) == 5
    bpps = [p[0] for p in rd["nkcodec"]]
    assert bpps == sorted(bpps)


def test_open_a_stream(server):
    img = photo((24, 40, 3))
    data = nkcodec.compress(img, 5)
    status, body, _ = _request(server + "/api/open", data)
    res = json.loads(body)
    assert status == 200 and res["info"]["quality"] == 5 and res["info"]["bytes"] == len(data)
    png = base64.b64decode(res["decoded"].split(",", 1)[1])
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), nkcodec.decompress(data))


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("/api/encode", b"", 400, "empty"),
        ("/api/encode", b"this is not an image", 400, "not an image"),
        ("/api/encode?quality=9", None, 400, "quality"),
        ("/api/encode?quality=x", None, 400, "quality"),
        ("/api/encode?preset=nope", None, 400, "preset"),
        ("/api/encode?preset=default&effort=2", None, 400, "effort"),
        ("/api/encode?preset=near-lossless&effort=3", None, 400, "effort"),
        ("/api/open", b"NKC\x01" + b"\x00" * 40, 422, "corrupt"),
        ("/api/open", b"junk", 422, "corrupt"),
        ("/api/nothing", b"x", 404, "not found"),
    ],
)
def test_bad_requests_get_a_4xx_and_a_message(server, path, body, status, words):
    if body is None:
        body = _png_bytes(photo((16, 16, 3)))
    got, raw, ctype = _request(server + path, body)
    assert got == status and ctype == "application/json"
    message = json.loads(raw)["error"]
    assert words in message.lower() and "Traceback" not in message


def test_caps(server, monkeypatch):
    monkeypatch.setattr(view, "MAX_PIXELS", 100)
    status, raw, _ = _request(server + "/api/encode", _png_bytes(photo((16, 16, 3))))
    assert status == 413 and "cap" in json.loads(raw)["error"]
    monkeypatch.setattr(view, "MAX_UPLOAD", 10)
    status, raw, _ = _request(server + "/api/open", b"x" * 11)
    assert status == 413 and "larger than the cap" in json.loads(raw)["error"]


@pytest.mark.parametrize("shape", [(40, 56, 4), (40, 56, 2), (40, 56)])
def test_peers_get_the_colours_of_rgba_and_gray_images(server, shape):
    img = photo(shape)
    status, body, _ = _request(server + "/api/encode?rd=0", _png_bytes(img))
    assert status == 200
    peer = json.loads(body)["peers"]["webp"]["image"]
    rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(peer.split(",", 1)[1]))).convert("RGB")).astype(int)
    channels_differ = bool(np.abs(rgb[..., 0] - rgb[..., 2]).max() > 8)
    assert channels_differ == (img.ndim == 3 and img.shape[2] == 4)  # RGBA: its colours; gray: gray


@pytest.mark.parametrize("length", ["abc", "-1", "1e3"])
def test_a_bad_content_length_gets_a_400_not_a_hang(server, length):
    import socket

    host, port = server.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"POST /api/encode HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
        reply = s.recv(4096).decode("latin-1")
    assert reply.startswith("HTTP/1.0 400") or reply.startswith("HTTP/1.1 400"), reply[:80]
    assert "Content-Length" in reply


def test_a_non_image_body_is_named_without_server_internals(server):
    status, raw, _ = _request(server + "/api/encode", b"this is not an image")
    message = json.loads(raw)["error"]
    assert status == 400 and "not an image" in message and "object at 0x" not in message


def test_favicon_is_not_an_error(server):
    status, _, _ = _request(server + "/favicon.ico")
    assert status == 204


def test_a_superseded_request_stops_and_the_rd_points_are_computed_once(server, monkeypatch):
    """A page's older request is answered 409 once a newer one has come in; the
    rate-distortion points of an image are computed once, not at every step."""
    calls = []
    real = view._rd_points
    monkeypatch.setattr(view, "_rd_points", lambda *a, **k: calls.append(1) or real(*a, **k))
    body = _png_bytes(photo((32, 48, 3), seed=4))
    for i, q in enumerate((2, 5, 3)):
        assert _request(server + f"/api/encode?quality={q}&page=p1&seq={10 + i}", body)[0] == 200
    assert len(calls) == 1
    status, raw, _ = _request(server + "/api/encode?quality=4&page=p1&seq=1", body)  # older than seq 12
    assert status == 409 and "superseded" in json.loads(raw)["error"]
    assert _request(server + "/api/encode?quality=4&page=p2&seq=1", body)[0] == 200  # another page is its own


def test_bounded_error_presets_get_no_rd_curve_but_a_note(server):
    status, raw, _ = _request(server + "/api/encode?preset=near-lossless&max_error=1", _png_bytes(photo((24, 32, 3))))
    res = json.loads(raw)
    assert status == 200 and "rd" not in res and "no quality ladder" in res["rd_note"]
