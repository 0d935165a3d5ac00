"""Look at the built docs site as a person would: serve ``site/`` on 127.0.0.1, open every page in
headless Chromium, and fail on a console error, an image that did not load, an internal link that
does not answer 200, or a family page without its animation. Saves a screenshot of each page to
``site/_screenshots/``. Needs Debian's ``chromium`` and ``chromium-driver`` (``make docs-check``
installs them) and selenium (the ``docs`` extra).

``python docs/check_site.py [--site site] [--pages N]``; exit 1 listing every problem found.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlparse

FAMILY_PAGES = ("envs/deeprm.html", "envs/dag.html", "envs/abr.html", "envs/cc.html", "envs/appointments.html")
PAGE_TIMEOUT_S = 30
MAX_SHOT_HEIGHT = 4000

BROKEN_IMAGES_JS = """
return Array.from(document.images)
    .filter(img => !(img.complete && img.naturalWidth > 0))
    .map(img => img.getAttribute('src'));
"""
ANIMATIONS_JS = """
return Array.from(document.images)
    .filter(img => img.complete && img.naturalWidth > 0 && /\\.gif$/.test(img.getAttribute('src')))
    .length;
"""
LINKS_JS = "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (http.server's signature)
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # the browser drops a connection when it leaves a page mid-download (a GIF): not a problem
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(root: Path) -> tuple[ThreadingHTTPServer, str]:
    """An HTTP server for ``root`` on a free 127.0.0.1 port, in a daemon thread."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def browser():
    """Headless Chromium through Debian's chromedriver (no driver or browser download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        raise FileNotFoundError("docs/check_site.py needs chromium and chromedriver on PATH "
                                "(apt-get install chromium chromium-driver; `make docs-check` does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    return driver


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def pages_of(site: Path) -> list[str]:
    """Every page of the site, home first, then the family and ID pages, then the rest."""
    pages = sorted(str(p.relative_to(site)) for p in site.rglob("*.html")
                   if p.name != "404.html" and not p.relative_to(site).parts[0].startswith("_"))
    first = ["index.html", *FAMILY_PAGES]
    return [p for p in first if p in pages] + [p for p in pages if p not in first]


def check(site: Path, limit: int | None = None) -> list[str]:
    """Open the pages; return the problems found (empty when every page is fine)."""
    if not (site / "index.html").exists():
        raise FileNotFoundError(f"{site}/index.html: the site is not built (run `make docs`)")
    shots = site / "_screenshots"
    shots.mkdir(exist_ok=True)
    pages = pages_of(site)[:limit]
    missing = [p for p in FAMILY_PAGES if p not in pages_of(site)]
    problems = [f"{p}: the family page is missing" for p in missing]
    server, base = serve(site)
    driver = browser()
    checked: dict[str, int] = {}
    try:
        for page in pages:
            driver.set_window_size(1280, 900)
            driver.get(base + page)
            for entry in driver.get_log("browser"):
                if entry.get("level") == "SEVERE":
                    problems.append(f"{page}: console error: {entry.get('message')}")
            for src in driver.execute_script(BROKEN_IMAGES_JS):
                problems.append(f"{page}: image did not load: {src}")
            if page in FAMILY_PAGES and driver.execute_script(ANIMATIONS_JS) < 1:
                problems.append(f"{page}: no animation (GIF) shown")
            for href in driver.execute_script(LINKS_JS):
                url = urldefrag(href).url
                if not url.startswith(base) or url in checked:
                    continue
                checked[url] = status(url)
                if checked[url] != 200:
                    problems.append(f"{page}: link {urlparse(url).path} answers {checked[url]}")
            height = min(MAX_SHOT_HEIGHT, int(driver.execute_script("return document.body.scrollHeight")))
            driver.set_window_size(1280, max(900, height))
            driver.save_screenshot(str(shots / (page.replace("/", "__").removesuffix(".html") + ".png")))
    finally:
        driver.quit()
        server.shutdown()
    print(f"docs check: {len(pages)} pages, {len(checked)} internal links, screenshots in {shots}",
          file=sys.stderr)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=Path(__file__).resolve().parent.parent / "site")
    parser.add_argument("--pages", type=int, default=None, help="check only the first N pages")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    problems = check(args.site, args.pages)
    for p in problems:
        print(p, file=sys.stderr)
    print(f"docs check: {len(problems)} problems in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
