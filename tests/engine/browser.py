"""A real browser on the site: Debian's headless Chromium driven through chromium-driver (Selenium),
with a fresh profile each time and every page it is told to keep saved as a screenshot.

No browser is downloaded: Selenium gets the driver's and the browser's paths, and SE_OFFLINE keeps
its manager from reaching out. Screenshots go to $WPSWARM_ARTIFACTS (default .artifacts/ in the
project), the test run's artifacts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("WPSWARM_ARTIFACTS") or ROOT / ".artifacts") / "e2e"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def unavailable_reason() -> str | None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    return f"no {', '.join(missing)} (apt-get install chromium chromium-driver)" if missing else None


class Page:
    """One browser tab on the site at `base`."""

    def __init__(self, driver: WebDriver, base: str) -> None:
        self.driver = driver
        self.base = base.rstrip("/")

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str, timeout: float = 30) -> WebElement:
        return WebDriverWait(self.driver, timeout).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
        )

    def click(self, css: str, timeout: float = 30) -> None:
        WebDriverWait(self.driver, timeout).until(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, css))
        ).click()

    def wait_text(self, text: str, timeout: float = 30) -> None:
        WebDriverWait(self.driver, timeout).until(lambda driver: text in driver.page_source)

    def screenshot(self, name: str) -> Path:
        path = artifacts_dir() / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def cookie_names(self) -> set[str]:
        return {str(cookie["name"]) for cookie in self.driver.get_cookies()}


@contextmanager
def chromium(base: str) -> Iterator[Page]:
    """A headless Chromium with a fresh profile, on the site at `base`."""
    profile = tempfile.mkdtemp(prefix="wpswarm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download a browser or driver
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield Page(driver, base)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# --------------------------------------------------------------------------- WordPress, as a person uses it


def install(page: Page, title: str, user: str, password: str) -> None:
    """WordPress's installer: language, then the site's title and its administrator."""
    page.open("/wp-admin/install.php")
    if page.driver.find_elements(By.CSS_SELECTOR, "#language-continue"):
        page.click("#language-continue")
    page.find("#weblog_title").send_keys(title)
    page.find("#user_login").send_keys(user)
    password_field = page.find("#pass1")
    password_field.clear()
    password_field.send_keys(password)
    page.find("#admin_email").send_keys("admin@example.com")
    page.click("#submit")
    page.wait_text("Success!")
    page.screenshot("01-installed")


def log_in(page: Page, user: str, password: str) -> None:
    page.open("/wp-login.php")
    page.find("#user_login").send_keys(user)
    page.find("#user_pass").send_keys(password)
    page.click("#wp-submit")
    page.find("#wpadminbar")
    page.screenshot("02-dashboard")


def publish_post(page: Page, title: str, text: str) -> None:
    """A post written and published in the block editor."""
    page.open("/wp-admin/post-new.php")
    # The editor's welcome guide covers it on a first visit.
    with suppress(TimeoutException):
        page.click(".edit-post-welcome-guide .components-modal__header button", timeout=10)
    page.find(".editor-post-title__input, .wp-block-post-title").send_keys(title)
    page.driver.switch_to.active_element.send_keys("\n" + text)
    page.click(".editor-post-publish-panel__toggle")
    page.click(".editor-post-publish-panel__header-publish-button button, .editor-post-publish-button")
    page.find(".post-publish-panel__postpublish")
    page.screenshot("03-published")


def shown_on_front_page(page: Page, text: str) -> bool:
    try:
        page.open("/")
        page.wait_text(text, timeout=10)
    except (TimeoutException, WebDriverException):
        return False
    return True


def logged_in(page: Page) -> bool:
    """The dashboard answers without sending the browser to the login page."""
    page.open("/wp-admin/")
    return "wp-login.php" not in page.driver.current_url and bool(page.driver.find_elements(By.ID, "wpadminbar"))
