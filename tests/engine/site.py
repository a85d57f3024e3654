"""A WordPress site as a client sees it over HTTP: its installer, a login, the pages.

Requests go to one task's address (`base`) and may name the site's own host in the Host header,
so a login made through one replica can be presented to another as the same site.
"""

from __future__ import annotations

import http.cookies
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message

from .harness import wait_for

TITLE = "wpswarm lab"
ADMIN = "wpadmin"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


@dataclass
class Page:
    status: int
    body: str
    location: str | None


@dataclass
class Browser:
    """Cookies and a base address; `host` is sent as the Host header when set. The cookies go with
    every request, whatever the address: two replicas of one site are one site to its cookies."""

    base: str
    host: str | None = None
    cookies: dict[str, str] = field(default_factory=lambda: {})

    def request(self, path: str, form: dict[str, str] | None = None, *, timeout: float = 10) -> Page:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(urllib.parse.urljoin(self.base, path), data=data)
        if self.host:
            request.add_header("Host", self.host)
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            with opener.open(request, timeout=timeout) as response:
                self._keep(response.headers)
                return Page(response.status, response.read().decode(errors="replace"), response.headers.get("Location"))
        except urllib.error.HTTPError as error:  # 3xx (redirects are not followed), 4xx, 5xx
            self._keep(error.headers)
            body = error.read().decode(errors="replace")
            return Page(error.code, body, error.headers.get("Location"))

    def _keep(self, headers: Message) -> None:
        for header in headers.get_all("Set-Cookie") or []:
            cookie = http.cookies.SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if (morsel["expires"] and "1970" in morsel["expires"]) or not morsel.value:
                    self.cookies.pop(name, None)  # WordPress clears a cookie by expiring it
                else:
                    self.cookies[name] = morsel.value

    def with_cookies_of(self, other: Browser) -> Browser:
        """Another address of the same site, presenting `other`'s cookies."""
        return Browser(self.base, self.host or other.host, dict(other.cookies))


def answers(browser: Browser, timeout: float = 90) -> Page:
    """The front page once the site answers without a server error (the installer counts)."""

    def probe() -> Page | None:
        try:
            page = browser.request("/")
        except OSError:
            return None
        return page if page.status < 500 else None

    return wait_for(probe, timeout=timeout, interval=1, what=f"WordPress answering on {browser.base}")


def install(browser: Browser, password: str, title: str = TITLE) -> None:
    """WordPress's installer, as its form posts it: the site's title and its administrator."""
    page = browser.request(
        "/wp-admin/install.php?step=2",
        {
            "weblog_title": title,
            "user_name": ADMIN,
            "admin_password": password,
            "admin_password2": password,
            "pw_weak": "on",
            "admin_email": "admin@example.com",
            "blog_public": "0",
            "language": "",
        },
    )
    assert (page.status, "Success!" in page.body) == (200, True), f"install: HTTP {page.status}: {page.body[-600:]}"


def log_in(browser: Browser, password: str) -> None:
    browser.request("/wp-login.php")  # sets the test cookie the form checks
    page = browser.request(
        "/wp-login.php",
        {"log": ADMIN, "pwd": password, "rememberme": "forever", "wp-submit": "Log In", "testcookie": "1"},
    )
    redirected = "wp-admin" in (page.location or "")
    assert (page.status, redirected) == (302, True), f"login: HTTP {page.status} {page.location}"


def logged_in(browser: Browser) -> bool:
    """The user's profile page answers without sending the browser to the login page. (Not the
    dashboard: its news widgets reach out to wordpress.org, which isn't reachable here.)"""
    page = browser.request("/wp-admin/profile.php", timeout=60)
    return page.status == 200 and 'id="your-profile"' in page.body


def front_page_title(browser: Browser) -> str | None:
    page = browser.request("/")
    found = re.search(r"<title>([^<]*)</title>", page.body)
    return found.group(1) if page.status == 200 and found else None
