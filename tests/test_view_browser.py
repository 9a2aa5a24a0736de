"""The viewer in a real browser (Chromium driven by Playwright): load the page,
upload a Kodak crop, move the quality, check the figures shown against
nkcodec.compress, open a corrupt file and read the error.  Skips with the
reason when no browser or no Playwright is installed.  Screenshots go to
$NKCODEC_SCREENSHOTS (benchmarks/results/ for the README's), else to tmp_path."""

import contextlib
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


@contextlib.contextmanager
def _browser_page(url):
    """(browser, page): Chromium at the viewer's page, 1400x900."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        yield browser, page


def _wait_encoded(page, quality: int) -> None:
    page.wait_for_selector(f"body[data-state=encoded][data-quality='{quality}'][data-busy='0']", timeout=120_000)


def test_viewer_in_chromium(url, tmp_path):
    shots = Path(os.environ.get("NKCODEC_SCREENSHOTS", tmp_path))
    crop = sample_images()["kodim23_half.png"][32:224, 64:320]  # a Kodak crop, 192x256
    src = tmp_path / "kodim23_crop.png"
    Image.fromarray(crop).save(src)
    with _browser_page(url) as (browser, page):
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


def test_viewer_interactions_in_chromium(url, tmp_path):
    """Wheel-zoom keeps the point under the cursor; dragging the split line moves it; an error
    shows above the image, with the old image and figures gone; controls that do not apply
    are disabled; an opened stream is not labelled as an original."""
    crop = sample_images()["kodim15_half.png"][:160, :240]
    src = tmp_path / "crop.png"
    Image.fromarray(crop).save(src)
    with _browser_page(url) as (browser, page):
        assert page.eval_on_selector("#left", "el => getComputedStyle(el).visibility") == "hidden"  # no broken icon
        page.set_input_files("#file", str(src))
        _wait_encoded(page, 4)
        assert page.is_disabled("#max-error") and not page.is_disabled("#effort") and not page.is_disabled("#quality")
        # wheel zoom at a point: the image pixel under the cursor stays under it
        box = page.locator("#viewport").bounding_box()
        x, y = box["x"] + 100, box["y"] + 70

        def under(px, py):
            r = page.eval_on_selector("#left", "el => el.getBoundingClientRect().toJSON()")
            return (px - r["x"]) / r["width"] * 240, (py - r["y"]) / r["height"] * 160

        before = under(x, y)
        page.mouse.move(x, y)
        page.mouse.wheel(0, -100)
        page.wait_for_function("document.getElementById('zoom').value === '2'")
        after = under(x, y)
        assert abs(after[0] - before[0]) < 1 and abs(after[1] - before[1]) < 1, (before, after)
        page.mouse.wheel(0, 100)
        page.wait_for_function("document.getElementById('zoom').value === '1'")
        # drag the split line: the split follows the cursor
        line = page.locator("#split-line").bounding_box()
        img = page.locator("#left").bounding_box()
        page.mouse.move(line["x"] + line["width"] / 2, line["y"] + 20)
        page.mouse.down()
        page.mouse.move(img["x"] + img["width"] * 0.25, line["y"] + 20, steps=4)
        page.mouse.up()
        assert abs(int(page.input_value("#split")) - 25) <= 2
        # a preset without a quality ladder: quality is disabled, max_error enabled, lossless peers offered
        page.select_option("#preset", "near-lossless")
        page.wait_for_selector("body[data-state=encoded][data-busy='0']")
        page.wait_for_function("document.getElementById('peer').options.length >= 3")
        assert page.is_disabled("#quality") and not page.is_disabled("#max-error") and not page.is_disabled("#effort")
        assert page.eval_on_selector("#effort option[value='2']", "o => o.disabled") is False
        labels = page.eval_on_selector_all("#peer option", "os => os.map((o) => o.textContent)")
        assert "PNG lossless" in labels and "WebP lossless" in labels
        assert "no quality ladder" in page.eval_on_selector("#rd", "el => el.textContent")
        # effort 2 is near-lossless's alone: back on the default preset it returns to 0, not a refused request
        page.select_option("#effort", "2")
        page.wait_for_selector("body[data-state=encoded][data-busy='0']")
        page.select_option("#preset", "default")
        page.wait_for_selector("body[data-state=encoded][data-busy='0']")
        assert page.input_value("#effort") == "0" and page.eval_on_selector("#effort option[value='2']", "o => o.disabled")
        # an error: shown above the image, the stale image and figures gone
        bad = tmp_path / "corrupt.nkc"
        data = nkcodec.compress(crop, 3)
        bad.write_bytes(data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:])
        page.set_input_files("#file", str(bad))
        page.wait_for_selector("body[data-state=error]", timeout=60_000)
        err = page.locator("#error").bounding_box()
        assert err is not None and err["y"] < box["y"] + box["height"] and err["y"] + err["height"] > 0  # on screen, by the image
        assert page.get_attribute("#left", "src") is None and page.locator("#table tbody tr").count() == 0
        # an opened stream: labelled as what it is; original-only controls off
        good = tmp_path / "good.nkc"
        good.write_bytes(data)
        page.set_input_files("#file", str(good))
        page.wait_for_selector("body[data-state=opened]", timeout=60_000)
        assert page.inner_text("#label-left").startswith("decoded .nkc") and page.is_disabled("#errmap")
        assert page.is_hidden("#error")
        browser.close()
