"""Does the stack's URL answer? Bounded GETs, their outcome as plain data for the http row."""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class HttpResult:
    url: str
    status: int | None  # last HTTP status seen
    error: str | None  # last connection error
    attempts: int
    seconds: float


def probe_http(
    url: str,
    *,
    timeout: float = 5.0,
    attempts: int = 5,
    delay: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpResult:
    """GETs `url` until it answers with a status below 500, at most `attempts` times.

    Redirects are not followed: WordPress redirects to its configured site URL, which need not
    resolve from here, and a redirect already proves the site answers."""
    parts = urllib.parse.urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    tried = 0
    for tried in range(1, attempts + 1):
        connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_type(parts.hostname or "localhost", parts.port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"User-Agent": "wordpress-swarm-verify"})
            status, error = connection.getresponse().status, None
        except (OSError, http.client.HTTPException) as exc:
            status, error = None, str(exc) or type(exc).__name__
        finally:
            connection.close()
        if status is not None and status < 500:
            break
        if tried < attempts:
            sleep(delay)
    return HttpResult(url=url, status=status, error=error, attempts=tried, seconds=time.monotonic() - started)
