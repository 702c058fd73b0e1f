"""The HTML report's size and render time in headless Chromium: `effplan report efficientnet-b7
--device a100-80gb --train`. Render time: from navigation to the script's
end (every table row and SVG mark drawn), then to the first paint after it; median of N loads.

    python benchmarks/html_report.py [--runs 5] [--chromium /usr/bin/chromium]

Goal (issue 15): under 2 MB and under 2 s to render.
"""
import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import _effplan  # benchmarks/_effplan.py

ARGS = ["report", "efficientnet-b7", "--device", "a100-80gb", "--train"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "b7.html"
        start = time.perf_counter()
        subprocess.run([_effplan.command(), *ARGS, "-o", str(path)], check=True)
        written = time.perf_counter() - start
        size = path.stat().st_size
        times = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            for _ in range(args.runs + 1):  # the first load warms the browser
                page = browser.new_page(viewport={"width": 1250, "height": 900})
                start = time.perf_counter()
                page.goto(path.as_uri())
                page.wait_for_selector("body[data-rendered]")
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                times.append(time.perf_counter() - start)
                marks = page.locator("svg .mark").count()
                page.close()
            browser.close()
    render = statistics.median(times[1:])
    print(f"effplan {' '.join(ARGS)}: written in {written:.2f} s (whole process)")
    print(f"page {size:,} bytes ({size / 2**20:.2f} MiB; goal < 2 MB: {'ok' if size < 2e6 else 'OVER'})")
    print(f"render {render:.2f} s median of {args.runs} loads, {marks:,} chart marks "
          f"(goal < 2 s: {'ok' if render < 2 else 'OVER'})")


if __name__ == "__main__":
    main()
