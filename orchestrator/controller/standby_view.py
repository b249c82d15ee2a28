"""The standby's own view of the primary: one more observer, on the replication path.

Asked over SSH each cycle: from the standby, does the primary answer SMTP with a 220
banner, and IMAPS with an IMAP greeting? A frozen primary accepts TCP (the kernel does)
but never greets, so greetings are what count. When the standby cannot be asked (SSH
fails or is slow) it abstains, with the reason, rather than voting.

The same round checks the replication path itself: can the standby open a connection to
the primary's doveadm replication port (read from the standby's own Dovecot config, so
the port is not typed twice)? A cut there is replication broken, known within a cycle
instead of after a canary's timeout.
"""

from __future__ import annotations

import shlex

from orchestrator.controller.model import Health, ObserverReport
from orchestrator.remote import RemoteError, SshTarget, run_remote

SMTP_OK, IMAPS_OK, REPL_OK, REPL_FAIL = "smtp=220", "imaps=ok", "repl=ok", "repl=fail"


def probe_script(address: str, timeout: float) -> str:
    """Shell run on the standby; prints one line per service. bash's /dev/tcp needs no
    package; the IMAPS greeting needs openssl (on every mail host: Dovecot's TLS)."""
    t, a = f"{max(1.0, timeout):.0f}", shlex.quote(address)
    smtp = f"timeout {t} bash -c 'exec 3<>/dev/tcp/'{a}'/25 && head -c 3 <&3' 2>/dev/null"
    # LOGOUT makes the server close the session, so openssl ends at once, not at timeout.
    imaps = (
        f"printf 'a LOGOUT\\r\\n' | timeout {t} openssl s_client -quiet -connect {a}:993 "
        "2>/dev/null | head -c 4"
    )
    repl = (
        "port=$(doveconf -h doveadm_port 2>/dev/null); "
        f'if [ -n "$port" ] && [ "$port" != 0 ]; then timeout {t} bash -c '
        f'"exec 3<>/dev/tcp/{a}/$port" 2>/dev/null && echo {REPL_OK} || echo {REPL_FAIL}; fi'
    )
    # The three checks run side by side: a primary that drops packets costs one
    # timeout, not three.
    return (
        f'echo "smtp=$({smtp})" & echo "imaps=$({imaps} | grep -q "^\\* OK" && echo ok)" & '
        f"{{ {repl}; }} & wait"
    )


def parse(output: str) -> tuple[Health, str]:
    lines = set(output.split())
    smtp, imaps = SMTP_OK in lines, IMAPS_OK in lines
    if smtp and imaps:
        return Health.UP, ""
    failed = [name for name, ok in (("smtp", smtp), ("imaps", imaps)) if not ok]
    return Health.FAILED, f"{', '.join(failed)} did not greet the standby"


def replication_path(output: str) -> bool | None:
    """True: the standby reaches the primary's replication port; None: not checked."""
    lines = set(output.split())
    return True if REPL_OK in lines else False if REPL_FAIL in lines else None


def standby_report(
    observer: str, standby: SshTarget, primary: str, primary_address: str, timeout: float
) -> tuple[ObserverReport, bool | None]:
    """The standby's vote on the primary, and whether it reaches the replication port."""
    try:
        result = run_remote(standby, probe_script(primary_address, timeout), timeout + 2)
    except RemoteError as exc:
        return ObserverReport(observer, {}, note=f"cannot ask the standby: {exc.kind}"), None
    if result.exit_code != 0:
        note = f"probe script exited {result.exit_code}"
        return ObserverReport(observer, {}, note=note), None
    health, why = parse(result.stdout)
    return ObserverReport(observer, {primary: health}, note=why), replication_path(result.stdout)
