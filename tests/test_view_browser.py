"""The viewer in a real browser (Chromium driven by Playwright): load the page,
upload a Kodak crop, move the quality, check the figures shown against
nkcodec.compress, open a corrupt file and read the error.  Skips with the
reason when no browser or no Playwright is installed.  Screenshots go to
$NKCODEC_SCREENSHOTS (benchmarks/results/ for the README's), else to tmp_path."""

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nkcodec
from nkcodec import metrics
from nkcodec.imageio import sample_images
from nkcodec.tools import view

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def url():
    srv = view.make_server("127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def _shown(page) -> dict:
    """The nkcodec row of the figures table, as the page shows it."""
    cells = page.locator("#table tbody tr[data-codec=nkcodec] td")
    return {cells.nth(i).get_attribute("data-col"): cells.nth(i).inner_text() for i in range(cells.count())}


def _wait_encoded(page, quality: int) -> None:
    page.wait_for_selector(f"body[data-state=encoded][data-quality='{quality}'][data-busy='0']", timeout=120_000)


def test_viewer_in_chromium(url, tmp_path):
    shots = Path(os.environ.get("NKCODEC_SCREENSHOTS", tmp_path))
    crop = sample_images()["kodim23_half.png"][32:224, 64:320]  # a Kodak crop, 192x256
    src = tmp_path / "kodim23_crop.png"
    Image.fromarray(crop).save(src)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        page.wait_for_selector("#sample option:nth-child(2)", state="attached")  # the samples arrived
        page.set_input_files("#file", str(src))
        _wait_encoded(page, 4)
        for q in (4, 7):
            if q != 4:  # move the quality slider as a user would
                page.eval_on_selector("#quality", f"el => {{ el.value = {q}; el.dispatchEvent(new Event('input')); }}")
                _wait_encoded(page, q)
            data = nkcodec.compress(crop, q)
            out = nkcodec.decompress(data)
            shown = _shown(page)
            assert int(shown["bytes"]) == len(data)
            assert shown["bpp"] == f"{metrics.bpp(data, crop):.4f}"
            assert shown["cr"] == f"{metrics.compression_ratio(data, crop):.3f}"
            assert shown["psnr"] == f"{metrics.psnr(crop, out):.2f}"
            assert shown["mse"] == f"{metrics.mse(crop, out):.3f}"
            assert int(shown["max_error"]) == int(np.abs(crop.astype(int) - out).max())
        page.screenshot(path=str(shots / "viewer.png"))
        # a fast slider: three qualities in a row; only the last one's figures may be shown
        page.eval_on_selector("#quality", "el => { for (const q of [2, 5, 3]) { el.value = q; el.dispatchEvent(new Event('input')); } }")
        _wait_encoded(page, 3)
        page.wait_for_timeout(1500)  # any stale answer would have landed by now
        assert page.get_attribute("body", "data-quality") == "3"
        assert int(_shown(page)["bytes"]) == len(nkcodec.compress(crop, 3))
        # pan by a drag, then move with no button held: the image must stay where the drag left it
        # (the browser's own image drag once swallowed the mouseup and the image kept following)
        box = page.locator("#viewport").bounding_box()
        x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + 40, y0 + 25, steps=5)
        page.mouse.up()
        panned = page.eval_on_selector("#stage", "el => el.style.transform")
        assert panned.startswith("translate(40px, 25px)"), panned
        page.mouse.move(x0 + 200, y0 + 120, steps=5)
        assert page.eval_on_selector("#stage", "el => el.style.transform") == panned
        # what the browser did: a mousedown, its native image drag (no mouseup follows), then moves
        # with no button held.  The page refuses the native drag, and a buttonless move ends the pan.
        refused, after = page.evaluate(
            """([x, y]) => {
                const vp = document.getElementById("viewport");
                vp.dispatchEvent(new MouseEvent("mousedown", {bubbles: true, cancelable: true, button: 0, buttons: 1, clientX: x, clientY: y}));
                const drag = new Event("dragstart", {bubbles: true, cancelable: true});
                document.getElementById("right").dispatchEvent(drag);
                window.dispatchEvent(new MouseEvent("mousemove", {bubbles: true, buttons: 0, clientX: x + 90, clientY: y + 60}));
                return [drag.defaultPrevented, document.getElementById("stage").style.transform];
            }""",
            [x0, y0],
        )
        assert refused and after == panned, (refused, after, panned)
        page.select_option("#peer", "jpeg")
        page.check("#errmap")
        page.eval_on_selector("#zoom", "el => { el.value = 8; el.dispatchEvent(new Event('input')); }")
        assert page.inner_text("#label-left").startswith("jpeg q") and page.inner_text("#label-right") == "|error| x 8"
        page.screenshot(path=str(shots / "viewer_zoom_jpeg_errormap.png"))
        bad = tmp_path / "corrupt.nkc"
        bad.write_bytes(data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:])
        page.set_input_files("#file", str(bad))
        page.wait_for_selector("body[data-state=error]", timeout=60_000)
        assert "corrupt stream" in page.inner_text("#error")
        page.screenshot(path=str(shots / "viewer_corrupt.png"))
        browser.close()
