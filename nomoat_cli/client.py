"""The one HTTP client of the hub's REST API: bearer auth, JSON errors as ApiError, retries with backoff.

Requests that are safe to repeat (GET, PUT of a chunk at an offset, and POSTs the caller marks
idempotent) are retried on connection errors and 5xx answers. Other POSTs are retried only when
the connection could not be opened at all, so a version is never uploaded twice, or when the hub
answered 503 with Retry-After: its database or blob store is down and nothing of the request was
recorded. While the hub says so, the client comes back when it asks, for up to OUTAGE_WAIT_SECONDS,
so a push rides out an outage of the hub's database or object store and then completes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urljoin

import requests
from urllib3.exceptions import NewConnectionError

from nomoat_cli import __version__
from nomoat_cli.errors import ApiError, CliError, ExitCode

T = TypeVar("T")
API_PREFIX = "api/v1/"  # relative, so an endpoint with a path prefix works
RETRY_STATUSES = frozenset({500, 502, 503, 504})
ATTEMPTS = 5
BACKOFF_SECONDS = 0.5  # doubled after each failed attempt: 0.5, 1, 2, 4
TIMEOUT_SECONDS = (10, 120)  # (connect, read)
OUTAGE_WAIT_SECONDS = 300.0  # how long to keep coming back while the hub answers 503 with Retry-After
MAX_RETRY_AFTER_SECONDS = 30.0  # a longer Retry-After is shortened to this


class NetworkError(CliError):
    """The hub could not be reached, or the connection broke."""

    def __init__(self, message: str, *, connected: bool = True) -> None:
        super().__init__(message, ExitCode.NETWORK)
        self.connected = connected  # False when no byte can have reached the server


def with_retries(call: Callable[[], T], *, retry_on: Callable[[Exception], bool]) -> T:
    """Run `call`, retrying while `retry_on(error)` says the error is transient: after the answer's Retry-After
    (for up to OUTAGE_WAIT_SECONDS in all) when it has one, else with exponential backoff, ATTEMPTS times."""
    delay, failures, outage_ends = BACKOFF_SECONDS, 0, None
    while True:
        try:
            return call()
        except (NetworkError, ApiError) as exc:
            if not retry_on(exc):
                raise
            wait = getattr(exc, "retry_after", None)
            if wait is None:
                failures += 1
                if failures == ATTEMPTS:
                    raise
                wait, delay = delay, delay * 2
            else:
                outage_ends = outage_ends or time.monotonic() + OUTAGE_WAIT_SECONDS
                wait = min(max(wait, BACKOFF_SECONDS), MAX_RETRY_AFTER_SECONDS)
                if time.monotonic() + wait > outage_ends:
                    raise
        time.sleep(wait)


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was never opened, so not a byte of the request was sent."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)


def _reason(exc: Exception) -> str:
    """The innermost cause's class name (ConnectionRefusedError, RemoteDisconnected, …): short and telling."""
    while exc.__context__ is not None or exc.__cause__ is not None:
        exc = exc.__cause__ or exc.__context__
    return type(exc).__name__


def iter_body(response: requests.Response, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """A streamed response body; a connection that breaks mid-body raises NetworkError."""
    try:
        yield from response.iter_content(chunk_bytes)
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout) as exc:
        raise NetworkError(f"the download from {response.url} broke off ({_reason(exc)})") from None


def api_path(*parts: str | int) -> str:
    """`api/v1/a/b/c` with each part URL-quoted ('/' kept inside file paths)."""
    return API_PREFIX + "/".join(quote(str(part), safe="/@") for part in parts)


def error_from(response: requests.Response) -> ApiError:
    """The hub's {"error": {"code", "message"}} as an ApiError; anything else as its HTTP status line."""
    try:
        error = response.json()["error"]
        message, code = str(error["message"]), str(error.get("code", ""))
    except (ValueError, KeyError, TypeError):
        message, code = f"HTTP {response.status_code} {response.reason or ''} from {response.request.method} " \
                        f"{response.url}", ""
    try:
        retry_after = float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        retry_after = None  # absent, or an HTTP date (the hub sends seconds)
    return ApiError(message, status=response.status_code, code=code, retry_after=retry_after)


class Client:
    def __init__(self, endpoint: str, token: str | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"nomoat-cli/{__version__}"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        """Absolute URL for an API path or for a (relative or absolute) URL the hub returned."""
        return urljoin(self.endpoint + "/", path)

    def request(self, method: str, path: str, *, idempotent: bool | None = None, stream: bool = False,
                **kwargs: Any) -> requests.Response:
        """Send one request (with retries); a non-2xx answer raises ApiError, an unreachable hub NetworkError."""
        url = self.url(path)
        if idempotent is None:
            idempotent = method in {"GET", "HEAD", "PUT", "DELETE"}

        def send() -> requests.Response:
            try:
                response = self.session.request(method, url, stream=stream, timeout=TIMEOUT_SECONDS, **kwargs)
            except requests.ConnectionError as exc:
                raise NetworkError(f"cannot reach {self.endpoint} ({_reason(exc)})",
                                   connected=not _never_connected(exc)) from None
            except requests.Timeout:
                raise NetworkError(f"{self.endpoint} did not answer within {TIMEOUT_SECONDS[1]} s") from None
            if response.status_code >= 400:
                raise error_from(response)
            return response

        def transient(exc: Exception) -> bool:
            if isinstance(exc, NetworkError):
                return idempotent or not exc.connected
            if not isinstance(exc, ApiError) or exc.status not in RETRY_STATUSES:
                return False
            # A 503 with Retry-After is the hub saying that nothing was recorded: safe to send again as it is.
            return idempotent or (exc.status == 503 and exc.retry_after is not None)

        return with_retries(send, retry_on=transient)

    def get_json(self, path: str) -> Any:
        return self.request("GET", path).json()

    def post_json(self, path: str, body: Any, *, idempotent: bool = False) -> requests.Response:
        return self.request("POST", path, json=body, idempotent=idempotent)
