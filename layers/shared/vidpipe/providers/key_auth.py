"""Bearer auth that fetches the key afresh after a 401, once.

A key put into the provider secret after a container started, or rotated
while it runs, would otherwise be found only when the secret's cache expires.
On a 401 the key is read again bypassing the cache; if it changed, the same
request is sent once more with it (the provider generated nothing for the 401,
so nothing is billed twice); if it did not, the 401 stands.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import httpx

# key(refresh) -> the current key; refresh=True bypasses any cache. "" means no key.
KeySource = Callable[[bool], str]


class RefreshingBearer(httpx.Auth):
    def __init__(self, key: KeySource):
        self.key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        used = self.key(False)
        _authorize(request, used)
        response = yield request
        if response.status_code != 401:
            return
        fresh = self.key(True)
        if fresh and fresh != used:
            _authorize(request, fresh)
            yield request


def refresh_key_on_401(http: httpx.Client, key: KeySource) -> httpx.Client:
    """Give ``http`` the refreshing bearer auth (it replaces any Authorization header a caller set)."""
    http.auth = RefreshingBearer(key)
    return http


def _authorize(request: httpx.Request, key: str) -> None:
    if key:
        request.headers["Authorization"] = f"Bearer {key}"
