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
        raise CloudflareApiError(
            f"Cloudflare refused {what} (HTTP {exc.status_code}: {_errors(exc.body)})",
            _codes(exc.body),
        ) from None
    except cloudflare.CloudflareError as exc:
        raise DnsError(f"Cloudflare SDK failed during {what}: {exc}") from None


def _errors(body: object) -> str:
    if isinstance(body, dict):
        errors = body.get("errors") or []
        parts = [f"{e.get('code')} {e.get('message')}" for e in errors if isinstance(e, dict)]
        if parts:
            return "; ".join(parts)
    return "no error detail"


def _codes(body: object) -> tuple[int, ...]:
    if not isinstance(body, dict):
        return ()
    errors: list[Any] = body.get("errors") or []
    return tuple(int(e["code"]) for e in errors if isinstance(e, dict) and "code" in e)


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
