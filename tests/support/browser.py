"""Headless Debian Chromium driven by Playwright (no downloaded browsers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.requirements import need_chromium

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 860}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@contextmanager
def browser(*extra_args: str) -> Iterator[Any]:
    """extra_args: more Chromium switches, e.g. --host-resolver-rules=MAP name ip."""
    path = need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=[*ARGS, *extra_args], headless=True)
        try:
            yield b
        finally:
            b.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def login(page: Any, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/customer/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-button")
    page.wait_for_url("**/customer/")
