"""The journeys in a real browser: Debian's Chromium driven by Playwright against pytest-django's
live server.

Playwright does not download a browser here: it launches the system's Chromium
(`E2E_CHROMIUM`, default /usr/bin/chromium). Without it these tests are skipped with the reason;
under REQUIRE_SERVICES=1 (CI, where `.ci/run` installs it) they fail instead.

Each journey saves full-page screenshots of its main pages at a desktop width and at a phone's
width under var/screenshots/<journey>/ (git-ignored), for a person to look at."""

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.conftest import REQUIRE_SERVICES

# The Playwright sync API keeps an event loop running in the test's thread; Django refuses ORM
# calls from such a thread unless told that this one is safe (it is: nothing else runs in it).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
DEMO_PASSWORD = "demo-clinic-2026"


def pytest_runtest_setup(item):
    # A conftest's runtest hooks apply to the tests under its folder only.
    if os.access(CHROMIUM, os.X_OK):
        return
    problem = f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
    if REQUIRE_SERVICES:
        pytest.fail(f"{problem} (REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(f"{item.nodeid}: {problem}")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": DESKTOP, "locale": "en-GB"}


@pytest.fixture
def page(page):
    # Long enough for a cold first request on CI, short enough that a wrong selector fails fast.
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def demo_clinic(transactional_db):
    """The demo clinic (staff accounts, patients, stock with history, courses and sessions),
    small enough to load in a second or two."""
    call_command("seed_demo", patients=12, stdout=open(os.devnull, "w"))  # noqa: SIM115


@pytest.fixture
def login(page, live_server) -> Callable[[str], None]:
    def log_in(username: str, password: str = DEMO_PASSWORD) -> None:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("form button[type=submit]")
        page.wait_for_load_state()
        assert "/accounts/login/" not in page.url, f"{username} could not log in"

    return log_in


class Screenshots:
    """Saves the page at both widths, numbered in the order the journey takes them."""

    def __init__(self, page, journey: str):
        self.page = page
        self.folder = SCREENSHOTS / journey
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.count = 0
        # Pages that scroll sideways as a whole, at either width.
        self.too_wide: list[str] = []

    def __call__(self, name: str) -> None:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        for size in (DESKTOP, PHONE):
            self.page.set_viewport_size(size)
            path = self.folder / f"{self.count:02d}-{slug}-{size['width']}.png"
            self.page.screenshot(path=str(path), full_page=True)
            overflow = self.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                self.too_wide.append(f"{path.name}: {overflow}px wider than the screen")
        self.page.set_viewport_size(DESKTOP)


@pytest.fixture
def shots(page, request):
    journey = request.node.name.removeprefix("test_").split("[")[0]
    screenshots = Screenshots(page, journey)
    yield screenshots
    report = screenshots.folder / "too-wide.txt"
    if screenshots.too_wide:
        report.write_text("\n".join(screenshots.too_wide) + "\n")
