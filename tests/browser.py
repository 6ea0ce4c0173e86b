"""Headless Chromium (Debian's, installed by ``make test``) opening a report the
way a reader does: what it logged, what it requested, its sections and images."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

#: Skip where Chromium is missing, except on CI, where `make test` installs it.
needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed: run `make test`, which installs it",
)


@dataclass(frozen=True)
class Rendered:
    errors: list[str]  # console errors and uncaught page errors
    warnings: list[str]  # console warnings
    requests: list[str]  # every URL the page asked for
    sections: int
    images: list[tuple[bool, int, int]]  # complete, natural width and height

    @property
    def offline(self) -> bool:
        """Whether the page asked for nothing but itself and inline data."""
        return all(url.startswith(("file:", "data:")) for url in self.requests)


def render(path: Path) -> Rendered:
    """Open ``path`` in headless Chromium and report what a reader's browser saw."""
    from playwright.sync_api import sync_playwright

    errors, warnings, requests = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        page = browser.new_page()
        page.on(
            "console",
            lambda m: (
                (errors if m.type == "error" else warnings).append(m.text)
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(Path(path).as_uri(), wait_until="load")
        sections = page.locator("section").count()
        images = page.evaluate(
            "Array.from(document.images).map(i => "
            "[i.complete, i.naturalWidth, i.naturalHeight])"
        )
        browser.close()
    return Rendered(errors, warnings, requests, sections, [tuple(i) for i in images])
