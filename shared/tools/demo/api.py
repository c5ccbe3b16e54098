"""The demo's HTTP client: JSON over the public ``/v1`` API with a Bearer key, nothing else."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

RETRIES_WHEN_BUSY = 5


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str):
        try:
            answer = json.loads(body)
            text = f"{answer.get('error', '')}: {answer.get('message', body)}"
            if answer.get("details"):
                text += f" {json.dumps(answer['details'])}"
        except ValueError:
            text = body[:300]
        super().__init__(f"{method} {path} answered {status} ({text})")
        self.status = status


class Api:
    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, key: str, body: Any = None, params: dict | None = None,
                expect: tuple[int, ...] = (200, 201), headers: dict | None = None) -> Any:
        """The answer's JSON (or bytes when it is not JSON). A 429 or 503 is waited out and retried."""
        url = self.base_url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body).encode()
        sent = {"Authorization": f"Bearer {key}", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        for attempt in range(RETRIES_WHEN_BUSY + 1):
            request = urllib.request.Request(url, data=data, headers=sent, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    status, payload = response.status, response.read()
                    kind = response.headers.get("Content-Type", "")
            except urllib.error.HTTPError as error:
                status, payload, kind = error.code, error.read(), error.headers.get("Content-Type", "")
                if status in (429, 503) and attempt < RETRIES_WHEN_BUSY:
                    time.sleep(float(error.headers.get("Retry-After") or 1))
                    continue
            if status not in expect:
                raise ApiError(method, path, status, payload.decode(errors="replace"))
            return json.loads(payload) if kind.startswith("application/json") else payload
        raise AssertionError("unreachable")

    def get(self, path: str, key: str, **kwargs) -> Any:
        return self.request("GET", path, key, **kwargs)

    def post(self, path: str, key: str, body: Any = None, **kwargs) -> Any:
        return self.request("POST", path, key, {} if body is None else body, **kwargs)

    def status_of(self, path: str, key: str) -> int:
        try:
            self.get(path, key)
            return 200
        except ApiError as error:
            return error.status


def wait_until(probe: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    """The first truthy answer of ``probe`` within ``timeout`` seconds, else None. Polls about once a second: each
    key has a request budget (``TASKLINKR_RATE_LIMIT``, 120 a minute by default)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() >= deadline:
            return found or None
        time.sleep(every)
