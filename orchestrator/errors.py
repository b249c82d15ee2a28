"""The one error hierarchy of mxctl.

Every error a user can cause or meet carries a message that names what failed and what to
do about it. Library exceptions (subprocess, HTTP, DNS) are translated into these at the
boundary where they happen, so the CLI can print one line and exit non-zero.
"""


class MxctlError(Exception):
    """Base of every error mxctl reports to a user."""

    exit_code = 1


class UsageError(MxctlError):
    """Bad command-line arguments."""

    exit_code = 2


class ConfigError(MxctlError):
    """Bad configuration or inventory; the message names the field and the fix."""

    exit_code = 2

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class LabError(MxctlError):
    """The local lab could not be built, reached or torn down."""


class DnsError(MxctlError):
    """A DNS provider or nameserver failed; the message names the server, record or credential."""


class DnsAuthError(DnsError):
    """The provider rejected our credential (TSIG key, API token or key); never retried."""


class DnsUnavailable(DnsError):
    """The provider could not be reached or answered with a transient failure; retriable."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StaleExpectation(DnsError):
    """A compare-and-swap found a different current RRset than expected; nothing was changed."""

    def __init__(self, message: str, current: object = None) -> None:
        super().__init__(message)
        self.current = current


class UnsafePlan(DnsError):
    """A DNS plan that must not be applied; every reason is listed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("unsafe DNS plan: " + "; ".join(self.problems))


class ProbeError(MxctlError):
    """A health probe could not be set up or run (targets, credentials, vantage host)."""


class CertError(MxctlError):
    """Issuing, storing or installing a certificate failed; the old one is kept."""
