"""The ops page in a real headless browser (Playwright driving Debian's Chromium), with the network
limited to Belay: log in, see the boxes, see a box turn red when its judge's socket goes, take a
backup from the page and see its age. Screenshots (laptop and phone) are saved in the test's temp
directory; the path is printed.

Skipped where Playwright or Chromium is missing, except with CI=true, where that is a failure
(.ci/run installs Debian's chromium when it is missing).
"""
from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD, make_config, serving
from tests.transport.ws.tablet_helpers import judge_token, tablet
from transport.app import create_app
from transport.ws.keys import OPS_FEED

CHROMIUM = Path("/usr/bin/chromium")
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SEEN_WITHIN_MS = 5000  # a summary comes every second; a few seconds is what a person would accept


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    missing = _browser_missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)
    from playwright.async_api import async_playwright  # only where it is installed

    async with async_playwright() as playwright:
        # Playwright's own browser download does not work here: Debian's Chromium, without its sandbox
        # (the tests may run as root, where Chromium refuses the sandbox).
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def test_the_ops_page_logs_in_shows_the_boxes_turns_a_box_red_and_takes_a_backup(
        tmp_path: Path, browser: Any) -> None:
    from playwright.async_api import expect

    shots = tmp_path / "screenshots"
    shots.mkdir()
    async with serving(create_app(make_config(tmp_path / "data"))) as client:
        routes = {box: {"boxId": box, "type": "INIT_ROUTE", "routeIndex": 1, "routesCount": 2, "holdsCount": 30,
                        "categorie": category, "competitors": [{"nume": "Ana Pop"}, {"nume": "Ion Ionescu"}]}
                  for box, category in ((1, "Youth A"), (2, "Seniors women"))}
        for route in routes.values():
            assert (await client.post("/api/cmd", json=route)).status == 200
        tokens = {box: await judge_token(client, box) for box in (1, 2)}
        origin = str(client.make_url("/")).rstrip("/")
        context = await browser.new_context(viewport=LAPTOP)
        outside = await _limit_network_to(context, origin)
        page = await context.new_page()
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        async with tablet(client, 1, tokens[1]), tablet(client, 2, tokens[2]) as second:
            await page.goto(f"{origin}/ops")
            await expect(page.locator("#login")).to_be_visible()
            await page.fill("#username", "admin")
            await page.fill("#password", ADMIN_PASSWORD)
            await page.click("#login-form button[type=submit]")

            box1, box2 = page.locator('.box[data-box-id="1"]'), page.locator('.box[data-box-id="2"]')
            await expect(box1).to_contain_text("Youth A", timeout=SEEN_WITHIN_MS)
            await expect(box2).to_contain_text("Seniors women")
            await expect(page.locator("#verdict-title")).to_have_text("All fine", timeout=SEEN_WITHIN_MS)
            await expect(box2).to_have_class(re.compile(r"\bonline\b"))
            board = client.app[OPS_FEED]
            for _ in range(3):  # chart points now rather than every 5 s
                assert (await client.post("/api/cmd", json=routes[1])).status == 200
                await board.sample()  # type: ignore[attr-defined]  # the OpsBoard behind the feed
            await expect(page.locator("#chart-latency polyline")).to_have_count(1, timeout=SEEN_WITHIN_MS)
            await expect(page.locator("#chart-screens polyline")).to_have_count(1)
            await page.screenshot(path=str(shots / "laptop-all-fine.png"), full_page=True)

            await second.close()  # box 2's tablet goes away
            await expect(box2).to_have_class(re.compile(r"\boffline\b"), timeout=SEEN_WITHIN_MS)
            await expect(box1).to_have_class(re.compile(r"\bonline\b"))
            await expect(page.locator("#verdict")).to_have_class(re.compile(r"\bbad\b"))
            await expect(page.locator("#verdict-title")).to_have_text("Box 2: judge tablet not connected")

            await expect(page.locator("#backup-age")).to_have_text("none")
            await page.click("#backup-now")
            await expect(page.locator("#backup-result")).to_contain_text("Backup written", timeout=30_000)
            await expect(page.locator("#backup-age")).to_have_text(re.compile(r"^\d+ s ago$"),
                                                                   timeout=SEEN_WITHIN_MS)
            await expect(page.locator("#backup-download")).to_be_visible()
            await page.screenshot(path=str(shots / "laptop-box-2-red.png"), full_page=True)

            await page.set_viewport_size(PHONE)
            await expect(box2).to_be_visible()
            await page.screenshot(path=str(shots / "phone-box-2-red.png"), full_page=True)
        await context.close()
    assert outside == [], f"the page tried to reach beyond Belay: {outside}"
    assert sockets and all(url.startswith(origin.replace("http", "ws", 1)) for url in sockets), sockets
    print(f"ops page screenshots: {shots}")


async def _limit_network_to(context: Any, origin: str) -> list[str]:
    """Every request not to Belay is aborted and listed (the list stays empty if the page is right)."""
    outside: list[str] = []

    async def only_belay(route: Any) -> None:
        url = route.request.url
        if url == origin or url.startswith(origin + "/"):
            await route.continue_()
        else:
            outside.append(url)
            await route.abort()

    await context.route("**/*", only_belay)
    return outside

