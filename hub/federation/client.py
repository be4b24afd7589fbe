"""Requests to other hubs, signed as this hub's actor (draft-cavage HTTP signatures): timeouts, a size cap, and
only http(s) URLs."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import requests
from django.conf import settings
from rest_framework.exceptions import ParseError

from hub.accounts.models import User
from hub.api.parsers import check_parsed
from hub.federation.actors import ACTIVITY_JSON, key_id
from hub.federation.httpsig import request_sign
from hub.federation.keys import actor_key

ACCEPT = f'{ACTIVITY_JSON}, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
USER_AGENT = "nomoat-federation/1"


class RemoteError(Exception):
    """A peer could not be reached or answered something unusable (the message says which URL and why)."""


def _checked(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if not parts or parts.scheme not in {"http", "https"} or not parts.netloc:
        raise RemoteError(f"{url!r}: expected an http(s) URL")
    return url


def _capped(response: requests.Response, limit: int) -> requests.Response:
    """Read the body, refusing one over `limit` bytes (so a hostile peer cannot fill memory)."""
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            response.close()
            raise RemoteError(f"{response.url}: answer over {limit} bytes")
        chunks.append(chunk)
    response._content = b"".join(chunks)  # requests' own attribute: .content/.json() then read what was capped
    return response


def signed_get(url: str, *, stream: bool = False, accept: str = ACCEPT) -> requests.Response:
    """GET signed as the hub actor. The body is read and capped at NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES unless
    `stream` (then the caller reads it, with its own cap: files). Raises RemoteError when unreachable."""
    headers = request_sign(key=actor_key(None), key_id=key_id(None), method="GET", url=_checked(url),
                           headers={"accept": accept, "user-agent": USER_AGENT})
    try:
        response = requests.get(url, headers=headers, timeout=settings.FEDERATION_HTTP_TIMEOUT_SECONDS, stream=True)
        return response if stream else _capped(response, settings.NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES)
    except requests.RequestException as exc:
        raise RemoteError(f"GET {url}: {exc}") from None


def signed_post(url: str, body: dict, *, user: User | None = None) -> requests.Response:
    """POST an activity signed as the hub actor (or as `user`, a local namespace). Raises RemoteError when the
    peer is unreachable; the caller judges the status."""
    data = json.dumps(body).encode()
    headers = request_sign(key=actor_key(user), key_id=key_id(user), method="POST", url=_checked(url), body=data,
                           headers={"content-type": ACTIVITY_JSON, "accept": ACCEPT, "user-agent": USER_AGENT})
    try:
        response = requests.post(url, data=data, headers=headers, timeout=settings.FEDERATION_HTTP_TIMEOUT_SECONDS,
                                 stream=True, allow_redirects=False)
        return _capped(response, settings.NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES)
    except requests.RequestException as exc:
        raise RemoteError(f"POST {url}: {exc}") from None


def fetch_json(url: str) -> dict:
    """A remote ActivityStreams document (signed GET), as a dict; RemoteError names what went wrong."""
    response = signed_get(url)
    if response.status_code != 200:
        raise RemoteError(f"GET {url}: HTTP {response.status_code}")
    try:
        document = response.json()
        check_parsed(document)
    except (ValueError, RecursionError):
        raise RemoteError(f"GET {url}: not JSON") from None
    except ParseError as exc:
        raise RemoteError(f"GET {url}: {exc.detail}") from None
    if not isinstance(document, dict):
        raise RemoteError(f"GET {url}: expected a JSON object")
    return document
