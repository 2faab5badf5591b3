"""Headless Chromium with every network request blocked, to check and time the generated maps
(used by the browser test and by ``make bench``). Needs Debian's ``chromium`` and
``chromium-driver`` (``.ci/run`` installs them) and selenium.
"""

from __future__ import annotations

import shutil

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


def chromium_paths() -> tuple[str | None, str | None]:
    """Paths of the browser and its driver, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which(
        "chromedriver"
    )


def offline_chromium():
    """A selenium driver of headless Chromium that can reach no network (proxy to a closed port,
    no name resolution, and every http/https/ws URL blocked through the DevTools protocol).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    if not browser or not driver_path:
        raise RuntimeError(
            "chromium and chromedriver are needed (Debian packages chromium, chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]}
    )
    return driver


def count_polygons(driver) -> int:
    """The interactive polygons the page draws (SVG paths that take the pointer)."""
    return driver.execute_script(
        "return document.querySelectorAll('path.leaflet-interactive').length"
    )
