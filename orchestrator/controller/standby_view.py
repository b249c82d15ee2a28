"""The standby's own view of the primary: one more observer, on the replication path.

Asked over SSH each cycle: from the standby, does the primary answer SMTP with a 220
banner, and IMAPS with an IMAP greeting? A frozen primary accepts TCP (the kernel does)
but never greets, so greetings are what count. When the standby cannot be asked (SSH
fails or is slow) it abstains, with the reason, rather than voting.
"""

from __future__ import annotations

import shlex

from orchestrator.controller.model import Health, ObserverReport
from orchestrator.remote import RemoteError, SshTarget, run_remote

SMTP_OK, IMAPS_OK = "smtp=220", "imaps=ok"


def probe_script(address: str, timeout: float) -> str:
    """Shell run on the standby; prints one line per service. bash's /dev/tcp needs no
    package; the IMAPS greeting needs openssl (on every mail host: Dovecot's TLS)."""
    t, a = f"{max(1.0, timeout):.0f}", shlex.quote(address)
    smtp = f"timeout {t} bash -c 'exec 3<>/dev/tcp/'{a}'/25 && head -c 3 <&3' 2>/dev/null"
    imaps = (
        f"timeout {t} openssl s_client -quiet -connect {a}:993 </dev/null 2>/dev/null | head -c 4"
    )
    return f'echo "smtp=$({smtp})"; echo "imaps=$({imaps} | grep -q "^\\* OK" && echo ok)"'


def parse(output: str) -> tuple[Health, str]:
    lines = set(output.split())
    smtp, imaps = SMTP_OK in lines, IMAPS_OK in lines
    if smtp and imaps:
        return Health.UP, ""
    failed = [name for name, ok in (("smtp", smtp), ("imaps", imaps)) if not ok]
    return Health.FAILED, f"{', '.join(failed)} did not greet the standby"


def standby_report(
    observer: str, standby: SshTarget, primary: str, primary_address: str, timeout: float
) -> ObserverReport:
    try:
        result = run_remote(standby, probe_script(primary_address, timeout), timeout + 2)
    except RemoteError as exc:
        return ObserverReport(observer, {}, note=f"cannot ask the standby: {exc.kind}")
    if result.exit_code != 0:
        return ObserverReport(observer, {}, note=f"probe script exited {result.exit_code}")
    health, why = parse(result.stdout)
    return ObserverReport(observer, {primary: health}, note=why)
