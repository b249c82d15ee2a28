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
