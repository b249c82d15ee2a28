"""The Cloudflare SDK client, built from explicit config only, and its errors translated.

The SDK's own retries are off (`max_retries=0`): it would retry a POST with no idempotency
key and could duplicate a record after a lost reply. Retries happen one level up, around
the whole read-compare-write, under tenacity with the failover deadline.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import cloudflare
import httpx

from orchestrator.dns.cloudflare.settings import CloudflareSettings
from orchestrator.errors import DnsAuthError, DnsError, DnsUnavailable

T = TypeVar("T")
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
# Codes that mean the credential itself is wrong, whatever the HTTP status: a malformed
# token comes back as HTTP 400 6003 "Invalid request headers" with 6111 "Invalid format
# for Authorization header" in its error_chain; 9103/9109 unknown key or token, 10000
# "Authentication error", 10001 unsupported auth scheme.
AUTH_CODES = frozenset({6003, 6111, 9103, 9106, 9109, 10000, 10001})


class CloudflareApiError(DnsError):
    """A 4xx the API explained; `codes` are Cloudflare's error codes (e.g. 81044)."""

    def __init__(self, message: str, codes: tuple[int, ...]) -> None:
        super().__init__(message)
        self.codes = codes


def build_client(
    settings: CloudflareSettings, on_request: Callable[[httpx.Request], None]
) -> cloudflare.Cloudflare:
    """An SDK client that uses the configured token and nothing from CLOUDFLARE_* env vars."""
    http = httpx.Client(timeout=settings.timeout, event_hooks={"request": [on_request]})
    client = cloudflare.Cloudflare(
        api_token=settings.api_token.reveal(),
        base_url=settings.base_url or DEFAULT_BASE_URL,
        max_retries=0,
        timeout=settings.timeout,
        http_client=http,
        _strict_response_validation=True,
    )
    # The constructor fills these from CLOUDFLARE_API_KEY / _EMAIL / _API_USER_SERVICE_KEY
    # when not given, and the email/key pair would then replace our token in every request.
    client.api_key = None
    client.api_email = None
    client.user_service_key = None
    if "CLOUDFLARE_CUSTOM_HEADERS" in os.environ:
        client._custom_headers = {}
    return client


def call(what: str, fn: Callable[[], T], credential: str) -> T:
    """Run one SDK call; every SDK exception leaves as one of ours, naming `what`."""
    try:
        return fn()
    except (cloudflare.AuthenticationError, cloudflare.PermissionDeniedError) as exc:
        raise DnsAuthError(
            f"Cloudflare rejected the API token from {credential} during {what} "
            f"(HTTP {exc.status_code}: {_errors(exc.body)}): check the token is valid and has "
            "Zone:DNS:Edit on this zone"
        ) from None
    except cloudflare.RateLimitError as exc:
        raise DnsUnavailable(
            f"Cloudflare rate-limited {what} (HTTP 429)", _retry_after(exc.response)
        ) from None
    except cloudflare.InternalServerError as exc:
        raise DnsUnavailable(
            f"Cloudflare failed {what} (HTTP {exc.status_code}: {_errors(exc.body)})",
            _retry_after(exc.response),
        ) from None
    except cloudflare.APITimeoutError:
        raise DnsUnavailable(f"Cloudflare did not answer {what} in time") from None
    except cloudflare.APIConnectionError as exc:
        raise DnsUnavailable(f"Cloudflare connection failed during {what}: {exc}") from None
    except cloudflare.APIResponseValidationError as exc:
        if isinstance(exc.body, dict) and exc.body.get("success") is False:
            raise DnsUnavailable(
                f"Cloudflare answered success:false to {what}: {_errors(exc.body)}"
            ) from None
        raise DnsError(f"Cloudflare's answer to {what} did not match the API schema") from None
    except cloudflare.APIStatusError as exc:
        if exc.status_code < 500 and AUTH_CODES.intersection(_codes(exc.body)):
            raise DnsAuthError(
                f"Cloudflare rejected the API token from {credential} during {what} "
                f"(HTTP {exc.status_code}: {_errors(exc.body)}): check the token is complete, "
                "a bare token with no 'Bearer ' prefix or quotes"
            ) from None
        raise CloudflareApiError(
            f"Cloudflare refused {what} (HTTP {exc.status_code}: {_errors(exc.body)})",
            _codes(exc.body),
        ) from None
    except cloudflare.CloudflareError as exc:
        raise DnsError(f"Cloudflare SDK failed during {what}: {exc}") from None


def _errors(body: object) -> str:
    """Each error with its error_chain: a validation error's top-level code is the
    generic 1004 "DNS Validation Error", the reason is in the chain."""
    parts = [_describe(e) for e in _error_list(body)]
    return "; ".join(parts) if parts else "no error detail"


def _describe(error: dict[str, Any]) -> str:
    text = f"{error.get('code')} {error.get('message')}"
    chain = [_describe(e) for e in error.get("error_chain") or [] if isinstance(e, dict)]
    return f"{text} ({'; '.join(chain)})" if chain else text


def _error_list(body: object) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return []
    errors = body.get("errors") or []
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _codes(body: object) -> tuple[int, ...]:
    """Every code in the errors and their chains, outermost first."""
    codes: list[int] = []
    pending = _error_list(body)
    while pending:
        error = pending.pop(0)
        if isinstance(error.get("code"), int):
            codes.append(error["code"])
        pending.extend(e for e in error.get("error_chain") or [] if isinstance(e, dict))
    return tuple(codes)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        date = parsedate_to_datetime(response.headers.get("date", value))
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - date).total_seconds())
