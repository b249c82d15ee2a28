"""Classification, SPF evaluation, DKIM record parsing, parity facts and the table."""

from __future__ import annotations

import asyncio
import errno
import ssl

import pytest

from orchestrator.controller import fencing
from orchestrator.probes import spf
from orchestrator.probes.parity import FENCE_MARKER, dkim_p, parse_facts
from orchestrator.probes.result import ErrorClass, ProbeResult, StepFailed
from orchestrator.probes.runner import classify
from orchestrator.probes.table import render


@pytest.mark.parametrize(
    ("exc", "step", "expected"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connect", ErrorClass.REFUSED),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "ehlo", ErrorClass.REFUSED),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "connect", ErrorClass.UNREACHABLE),
        (OSError(errno.ENETUNREACH, "Network unreachable"), "connect", ErrorClass.UNREACHABLE),
        (TimeoutError(), "banner", ErrorClass.TIMEOUT),
        (ssl.SSLCertVerificationError("bad cert"), "tls", ErrorClass.CERTIFICATE),
        (ssl.SSLError(1, "wrong version number"), "tls", ErrorClass.TLS),
        (ConnectionResetError(), "tls", ErrorClass.TLS),
        (asyncio.IncompleteReadError(b"", None), "banner", ErrorClass.PROTOCOL),
        (StepFailed(ErrorClass.AUTH, "no"), "auth", ErrorClass.AUTH),
        (KeyError("bug"), "select", ErrorClass.INTERNAL),
    ],
)
def test_classify(exc: BaseException, step: str, expected: ErrorClass) -> None:
    error, message = classify(exc, step)
    assert error is expected
    assert message


def test_a_result_is_ok_exactly_when_it_has_no_error() -> None:
    with pytest.raises(ValueError):
        ProbeResult("smtp", "mx1", ok=True, latency=0.1, error=ErrorClass.TIMEOUT)
    with pytest.raises(ValueError):
        ProbeResult("smtp", "mx1", ok=False, latency=0.1)


ZONE = {
    "TXT": {
        "example.test": ["v=spf1 mx a:mx2.example.test -all"],
        "only-mx.test": ["v=spf1 mx -all"],
        "inc.test": ["v=spf1 include:example.test ~all"],
        "cidr.test": ["v=spf1 ip4:10.254.77.0/24 -all"],
        "redir.test": ["v=spf1 redirect=cidr.test"],
        "ptr.test": ["v=spf1 ptr -all"],
        "two.test": ["v=spf1 -all", "v=spf1 +all"],
    },
    "A": {"mx1.example.test": ["10.254.77.21"], "mx2.example.test": ["10.254.77.22"]},
    "MX": {"example.test": ["mx1.example.test"], "only-mx.test": ["mx1.example.test"]},
}


async def _txt(name: str) -> list[str]:
    return ZONE["TXT"].get(name, [])


async def _a(name: str) -> list[str]:
    return ZONE["A"].get(name, [])


async def _mx(name: str) -> list[str]:
    return ZONE["MX"].get(name, [])


@pytest.mark.parametrize(
    ("domain", "address", "allowed"),
    [
        ("example.test", "10.254.77.21", True),  # via mx
        ("example.test", "10.254.77.22", True),  # via a:mx2
        ("example.test", "10.254.77.99", False),
        ("only-mx.test", "10.254.77.22", False),  # the standby is not the MX: not allowed
        ("inc.test", "10.254.77.22", True),
        ("cidr.test", "10.254.77.22", True),
        ("redir.test", "10.254.77.21", True),
        ("two.test", "10.254.77.21", False),  # two records: a permerror, never a pass
        ("none.test", "10.254.77.21", False),
    ],
)
def test_spf_authorizes(domain: str, address: str, allowed: bool) -> None:
    assert asyncio.run(spf.authorizes(domain, address, _txt, _a, _mx)) is allowed


def test_spf_mechanisms_not_followed_are_said_so() -> None:
    with pytest.raises(spf.SpfUnsupported, match="ptr"):
        asyncio.run(spf.authorizes("ptr.test", "10.254.77.21", _txt, _a, _mx))


def test_dkim_p_tag_from_a_split_txt_record() -> None:
    assert dkim_p(["v=DKIM1; k=rsa; p=MIIB IjAN BgkqhkiG"]) == "MIIBIjANBgkqhkiG"
    assert dkim_p(["v=spf1 -all"]) is None


def test_parity_facts_from_host_output() -> None:
    output = (
        "### users\nalice@example.test\nprobe@example.test\n### rc users 0\n"
        "### dkim\n-----BEGIN PUBLIC KEY-----\nMIIBIj\nANBgk\n-----END PUBLIC KEY-----\n"
        "### rc dkim 0\n"
    )
    facts = parse_facts(output)
    assert facts.users == {"alice@example.test", "probe@example.test"}
    assert facts.dkim_public == "MIIBIjANBgk"
    failed = parse_facts(output.replace("### rc dkim 0", "### rc dkim 1"))
    assert failed.dkim_public is None and failed.problem.startswith("dkim: exit 1")


def test_table_shows_failures_with_class_and_step() -> None:
    rows = [
        ProbeResult("smtp", "mx1", True, 0.012, details={"banner_code": 220}),
        ProbeResult(
            "imaps", "mx2", False, 1.0, ErrorClass.TIMEOUT, "greeting", "no answer at greeting"
        ),
    ]
    text = render(rows)
    assert "mx1   smtp   ok        12 ms  banner_code=220" in text
    assert "mx2   imaps  FAILED  1000 ms  timeout at greeting: no answer at greeting" in text


def test_parity_facts_say_whether_the_host_is_fenced() -> None:
    base = "### users\nalice@example.test\n### rc users 0\n"
    assert parse_facts(base + "### fenced\n### rc fenced 0\n").fenced is True
    assert parse_facts(base + "### fenced\n### rc fenced 1\n").fenced is False
    assert parse_facts(base).fenced is None  # not asked (or no answer): unknown
    # `mxctl check` reads the controller's own marker, not a copy that could drift.
    assert FENCE_MARKER == fencing.MARKER
