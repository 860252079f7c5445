"""Screenshots of the dashboard pages in headless Chromium (Playwright), for docs/screenshots/.

    python -m dashboards.screenshots <site folder> <out folder> [--width 1440] [--height 900]

Writes <page>.png (full page) for each page of the site and one drill-down page (explain.png), with
the network off, from file://. Needs Debian's chromium at /usr/bin/chromium (`make screenshots`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards.render import DRILLDOWN_DIR, NAV

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]


def take(site: Path, out: Path, width: int = 1440, height: int = 900) -> list[Path]:
    """One full-page PNG per page of `site` into `out`; returns the files written."""
    from playwright.sync_api import sync_playwright

    pages = [(href, site / href) for href, _ in NAV]
    drill = sorted((site / DRILLDOWN_DIR).glob("*.html"))
    if drill:
        pages.append(("explain.html", drill[0]))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(offline=True, viewport={"width": width, "height": height})
            pg = ctx.new_page()
            for name, path in pages:
                pg.goto(path.resolve().as_uri())  # a relative folder (make screenshots passes one) has no file URI
                charts = pg.locator(".figure").count()
                if charts:
                    pg.wait_for_function(
                        f"document.querySelectorAll('.figure .js-plotly-plot .main-svg').length >= {charts}")
                shot = out / name.replace(".html", ".png")
                pg.screenshot(path=str(shot), full_page=True)
                written.append(shot)
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshots of the dashboard pages (headless Chromium).")
    parser.add_argument("site", type=Path, help="the dashboards folder (with index.html)")
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    parser.add_argument("--width", type=int, default=1440, help="viewport width in px (default 1440)")
    parser.add_argument("--height", type=int, default=900, help="viewport height in px (default 900)")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"no dashboards in {args.site}: run `make demo` first", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print(f"screenshots need Debian's chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    for shot in take(args.site, args.out, args.width, args.height):
        print(shot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
