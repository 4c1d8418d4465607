"""Twilio's webhook signature (``X-Twilio-Signature``), as documented and as Twilio's SDKs check it.

The signed string is the full URL Twilio called, followed by every POST parameter sorted by
name (case-sensitive), each distinct value (sorted) as name + value. The header is the base64 HMAC-SHA1 of that string
keyed with the account's auth token. Like the SDKs, the URL is tried with and without the
default port, because Twilio may sign either form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

HEADER = "X-Twilio-Signature"


def compute(url: str, params: Mapping[str, Iterable[str]], auth_token: str) -> str:
    """The header value for a POST of ``params`` (name -> values) to ``url``."""
    signed = url + "".join(name + value for name in sorted(params) for value in sorted(set(params[name])))
    digest = hmac.new(auth_token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_problem(header: str | None, url: str, params: Mapping[str, Iterable[str]], auth_token: str) -> str | None:
    """``None`` if ``header`` signs the request, else what is wrong (constant-time comparison)."""
    if not header:
        return f"the {HEADER} header is missing"
    given = header.strip().encode("ascii", "replace")
    for candidate in _url_forms(url):
        if hmac.compare_digest(compute(candidate, params, auth_token).encode("ascii"), given):
            return None
    return f"the {HEADER} signature does not match the URL and parameters"


def _url_forms(url: str) -> list[str]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    without = urlunsplit(parts._replace(netloc=_netloc(parts, host)))
    forms = [url, without]
    if default is not None:
        forms.append(urlunsplit(parts._replace(netloc=_netloc(parts, f"{host}:{parts.port or default}"))))
    return list(dict.fromkeys(forms))


def _netloc(parts: object, hostport: str) -> str:
    userinfo = getattr(parts, "netloc").rpartition("@")
    return f"{userinfo[0]}@{hostport}" if userinfo[1] else hostport
