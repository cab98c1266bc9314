"""Log in to a running portal the way a browser behind the TLS proxy does, and open pages.

    python3 deploy/smoke_pages.py BASE_URL USERNAME PATH[=TEXT|=403] ...

The password comes from SMOKE_PASSWORD (never the command line). Every request carries
``X-Forwarded-Proto: https`` as the proxy sends it, so the secure session and CSRF cookies,
the CSRF origin check and the HTTPS redirect all apply unchanged. Each PATH must answer 200 and
contain TEXT (when given), or answer 403 when ``=403`` is given. Standard library only: it runs
on the CI machine, outside the image. Exit 0 when every page held; one line per page.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import urllib.parse


class Browser:
    def __init__(self, base: str):
        parts = urllib.parse.urlsplit(base)
        self.netloc = parts.netloc
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, dict, str]:
        connection = http.client.HTTPConnection(self.netloc, timeout=30)
        headers = {
            "X-Forwarded-Proto": "https",
            # What a browser sends on a same-origin https POST: Django's CSRF check compares it.
            "Origin": f"https://{self.netloc}",
            "Referer": f"https://{self.netloc}/login/",
        }
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        connection.close()
        return response.status, dict(response.getheaders()), text


def main(argv: list[str]) -> int:
    base, username, *pages = argv
    password = os.environ["SMOKE_PASSWORD"]
    browser = Browser(base)
    status, _, html = browser.request("GET", "/login/")
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if status != 200 or not match or "csrftoken" not in browser.cookies:
        print(f"FAILED: {username}: login page {status}, CSRF token and cookie present: {bool(match)}")
        return 1
    status, headers, _ = browser.request(
        "POST",
        "/login/",
        {"username": username, "password": password, "csrfmiddlewaretoken": match.group(1)},
    )
    location = {k.lower(): v for k, v in headers.items()}.get("location", "")
    if status != 302 or "sessionid" not in browser.cookies or "/login/" in location:
        print(
            f"FAILED: {username}: login answered {status} (to {location!r}), session cookie set: "
            f"{'sessionid' in browser.cookies}"
        )
        return 1
    print(f"ok: {username} logged in over https")
    failed = 0
    for page in pages:
        path, _, expect = page.partition("=")
        status, _, html = browser.request("GET", path)
        good = status == 403 if expect == "403" else status == 200 and (not expect or expect in html)
        print(
            f"{'ok' if good else 'FAILED'}: {username} GET {path} -> {status}"
            + (f" (expects {expect!r})" if expect else "")
        )
        failed += not good
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
