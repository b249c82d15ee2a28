"""Downtime as the world sees it: a mail user on `client` and a remote MTA on `sender`,
both behind the lab's caching resolver, neither ever told that a failover happened.

`ClientWatch` runs a small IMAP client inside `client` (its own python3, its own
resolv.conf): it resolves `mail.<zone>` through the cache on every attempt, logs in and
looks for a message, the way a mail program polls. It reports when it first saw it and
at which address, so the client RTO includes the cached answer's remaining TTL.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mxlab import acmehost, control
from mxlab.state import LabState, state_dir

# Runs inside `client` with the standard library only; its settings come on stdin so the
# password never appears in a process listing.
_CLIENT_SCRIPT = r"""
import imaplib, json, socket, ssl, sys, time
cfg = json.loads(sys.stdin.read())
ctx = ssl.create_default_context(cadata=cfg["ca"])
deadline, attempts, last, address = time.time() + cfg["timeout"], 0, "", ""
while time.time() < deadline:
    attempts += 1
    try:
        address = socket.getaddrinfo(cfg["name"], 993, socket.AF_INET)[0][4][0]
        # Connect by name, as a mail program does: TLS checks the client-facing name.
        with imaplib.IMAP4_SSL(cfg["name"], 993, ssl_context=ctx, timeout=3) as imap:
            imap.login(cfg["user"], cfg["password"])
            imap.select("INBOX", readonly=True)
            _, data = imap.search(None, "SUBJECT", '"%s"' % cfg["subject"])
            if data and data[0].split():
                print(json.dumps({"ok": True, "at": time.time(), "address": address,
                                  "attempts": attempts}))
                sys.exit(0)
            last = "logged in at %s, message not there yet" % address
    except Exception as exc:
        last = "%s: %s" % (type(exc).__name__, exc)
    time.sleep(cfg["interval"])
print(json.dumps({"ok": False, "last": last, "attempts": attempts, "address": address}))
"""


@dataclass(frozen=True)
class ClientSighting:
    ok: bool
    at: float  # wall-clock time.time() of the first successful look (0 when not ok)
    address: str  # where the client's resolver sent it
    attempts: int
    last_error: str


class ClientWatch:
    """Poll from `client` until `subject` is readable in `user`'s INBOX (background)."""

    def __init__(
        self,
        lab: LabState,
        subject: str,
        user: str = "alice@example.test",
        timeout: float = 180.0,
        interval: float = 0.5,
    ) -> None:
        secret = state_dir() / "secrets" / f"mail-user-{user.replace('@', '-at-')}"
        settings = {
            "name": f"mail.{lab.zones[0]}",
            "user": user,
            "password": secret.read_text().strip(),
            "subject": subject,
            "ca": Path(acmehost.trust_file(lab)).read_text(),
            "timeout": timeout,
            "interval": interval,
        }
        self._proc = subprocess.Popen(
            control.exec_argv("client", ["python3", "-c", _CLIENT_SCRIPT]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(settings))
        self._proc.stdin.close()
        self._timeout = timeout

    def result(self) -> ClientSighting:
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._proc.wait(timeout=self._timeout + 30)  # its output is a line or two
        out, err = self._proc.stdout.read(), self._proc.stderr.read()
        try:
            raw = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return ClientSighting(False, 0.0, "", 0, f"client script failed: {err.strip()[-300:]}")
        return ClientSighting(
            bool(raw["ok"]),
            float(raw.get("at", 0.0)),
            str(raw.get("address", "")),
            int(raw.get("attempts", 0)),
            str(raw.get("last", "")),
        )
