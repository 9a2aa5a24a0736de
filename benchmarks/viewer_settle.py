"""How long the viewer takes to settle after fast quality steps (issue 24): a Kodak image
is opened, then the Quality slider is stepped with the -> key four times in a row, and the
time from the last step to the page showing that quality's figures is measured.

    python benchmarks/viewer_settle.py ../shared/data/kodak/kodim23.png [--repeat 3]

Needs Playwright and Chromium (the test extra; Debian's chromium)."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import threading
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    try:
        from nkcodec.tools import view
    except ImportError:  # 0.2's layout, to measure the viewer before
        from nkcodec import view

    srv = view.make_server("127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/"
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        page.set_input_files("#file", args.image)
        page.wait_for_selector("body[data-state=encoded][data-quality='4'][data-busy='0']", timeout=300_000)
        quality = 4
        for _ in range(args.repeat):
            page.focus("#quality")
            for _ in range(4):
                direction = "ArrowRight" if quality < 5 else "ArrowLeft"
                page.keyboard.press(direction)
                quality += 1 if direction == "ArrowRight" else -1
            t = time.perf_counter()
            page.wait_for_selector(f"body[data-state=encoded][data-quality='{quality}'][data-busy='0']", timeout=300_000)
            times.append(time.perf_counter() - t)
        browser.close()
    srv.shutdown()
    print(json.dumps({"image": args.image, "settle_seconds": [round(x, 2) for x in times], "median": round(statistics.median(times), 2)}))


if __name__ == "__main__":
    main()
