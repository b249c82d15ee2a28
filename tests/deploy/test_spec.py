"""Inventory validation: every bad input stops the deploy with an error naming its field."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.deploy.spec import MailPair, is_hostname, load_pair
from orchestrator.errors import ConfigError
from tests.deploy import factories

Inventory = dict[str, dict[str, Any]]


def both(key: str, value: Any) -> Callable[[Inventory, Path], None]:
    def mutate(inv: Inventory, tmp: Path) -> None:
        for data in inv.values():
            data[key] = value

    return mutate


def on(host: str, key: str, value: Any) -> Callable[[Inventory, Path], None]:
    def mutate(inv: Inventory, tmp: Path) -> None:
        inv[host][key] = value

    return mutate


def drop(key: str) -> Callable[[Inventory, Path], None]:
    def mutate(inv: Inventory, tmp: Path) -> None:
        for data in inv.values():
            data.pop(key, None)

    return mutate


def user_field(index: int, key: str, value: Any) -> Callable[[Inventory, Path], None]:
    def mutate(inv: Inventory, tmp: Path) -> None:
        for data in inv.values():
            users = [dict(u) for u in data["mail_users"]]
            if value is None:
                users[index].pop(key)
            else:
                users[index][key] = value
            data["mail_users"] = users

    return mutate


def loose_secret_file(inv: Inventory, tmp: Path) -> None:
    ref = factories.write_secret(tmp / "loose", "x" * 24, mode=0o644)
    both("mail_replication_password", ref)(inv, tmp)


def bad_dkim_key(inv: Inventory, tmp: Path) -> None:
    both("mail_dkim_key", factories.write_secret(tmp / "notakey", "hello"))(inv, tmp)


def cert_without_client_name(inv: Inventory, tmp: Path) -> None:
    ca_cert, ca_key = factories.make_ca(tmp / "other-ca")
    from orchestrator.deploy import tlscerts

    cert, key = tlscerts.issue_lab_cert(ca_cert, ca_key, ("mx2.example.com",), tmp / "tls2")
    inv["mx2"]["mail_tls_cert"] = str(cert)
    inv["mx2"]["mail_tls_key"] = str(key)


def foreign_key(inv: Inventory, tmp: Path) -> None:
    inv["mx2"]["mail_tls_key"] = inv["mx1"]["mail_tls_key"]


def third_host(inv: Inventory, tmp: Path) -> None:
    inv["mx3"] = dict(inv["mx2"], mail_fqdn="mx3.example.com")


# (case id, mutation, field the error must name, words the message must contain)
BAD_INPUTS: list[tuple[str, Callable[[Inventory, Path], None], str, str]] = [
    ("unknown role", on("mx2", "mail_role", "backup"), "mail[mx2].mail_role", "unknown role"),
    ("missing role", on("mx1", "mail_role", None), "mail[mx1].mail_role", "required"),
    ("two primaries", on("mx2", "mail_role", "primary"), "mail_role", "two primary"),
    ("two standbys", on("mx1", "mail_role", "standby"), "mail_role", "two standby"),
    ("three hosts", third_host, "mail", "exactly two hosts"),
    ("bad fqdn", on("mx1", "mail_fqdn", "mx1"), "mail[mx1].mail_fqdn", "fully qualified"),
    ("same fqdn", on("mx2", "mail_fqdn", "mx1.example.com"), "mail_fqdn", "both hosts"),
    (
        "invalid domain",
        both("mail_domains", ["example.com", "exa mple.org"]),
        "mail_domains[1]",
        "not a valid",
    ),
    (
        "domain label hyphen",
        both("mail_domains", ["-bad.example"]),
        "mail_domains[0]",
        "not a valid",
    ),
    ("single-label domain", both("mail_domains", ["localhost"]), "mail_domains[0]", "not a valid"),
    ("upper-case domain", both("mail_domains", ["Example.com"]), "mail_domains[0]", "lower-case"),
    (
        "duplicate domain",
        both("mail_domains", ["example.com", "example.com"]),
        "mail_domains[1]",
        "twice",
    ),
    ("no domains", both("mail_domains", []), "mail_domains", "required"),
    ("domains differ", on("mx2", "mail_domains", ["example.com"]), "mail_domains", "differs"),
    ("bad client name", both("mail_client_name", "mail"), "mail_client_name", "fully qualified"),
    ("missing user password", user_field(1, "password", None), "mail_users[1].password", "missing"),
    (
        "user password inline",
        user_field(0, "password", "hunter2"),
        "mail_users[0].password",
        "reference",
    ),
    (
        "missing env secret",
        user_field(0, "password", "env:MXCTL_TEST_NOPE"),
        "mail_users[0].password",
        "MXCTL_TEST_NOPE",
    ),
    (
        "missing secret file",
        user_field(0, "password", "file:/nonexistent/pw"),
        "mail_users[0].password",
        "does not exist",
    ),
    (
        "user in foreign domain",
        user_field(0, "address", "carol@elsewhere.net"),
        "mail_users[0].address",
        "not in mail_domains",
    ),
    (
        "bad address",
        user_field(0, "address", "no-at-sign"),
        "mail_users[0].address",
        "not a mail address",
    ),
    (
        "duplicate user",
        user_field(1, "address", "alice@example.com"),
        "mail_users[1].address",
        "twice",
    ),
    ("unknown user key", user_field(0, "quota", "1G"), "mail_users[0]", "unknown keys quota"),
    ("no users", both("mail_users", []), "mail_users", "required"),
    ("no probe user", drop("mail_probe_user"), "mail_probe_user", "required"),
    (
        "probe is a real user",
        both("mail_probe_user", {"address": "alice@example.com", "password": "env:HOME"}),
        "mail_probe_user.address",
        "dedicated",
    ),
    (
        "alias shadows mailbox",
        both("mail_aliases", {"alice@example.com": "bob@example.org"}),
        "mail_aliases['alice@example.com']",
        "shadow",
    ),
    ("loose secret file", loose_secret_file, "mail_replication_password", "chmod 600"),
    (
        "missing replication secret",
        drop("mail_replication_password"),
        "mail_replication_password",
        "required",
    ),
    (
        "weak replication secret",
        both("mail_replication_password", "env:MXCTL_TEST_SHORT"),
        "mail_replication_password",
        "16+",
    ),
    ("bad port", both("mail_replication_port", 70000), "mail_replication_port", "out of range"),
    (
        "port not a number",
        both("mail_replication_port", "twelve"),
        "mail_replication_port",
        "integer",
    ),
    ("bad selector", both("mail_dkim_selector", "mail_2026"), "mail_dkim_selector", "DNS label"),
    ("dkim key not a key", bad_dkim_key, "mail_dkim_key", "PEM RSA"),
    ("missing dkim key", drop("mail_dkim_key"), "mail_dkim_key", "required"),
    (
        "size limit too small",
        both("postfix_message_size_limit", 10),
        "postfix_message_size_limit",
        "out of range",
    ),
    (
        "cert path relative",
        on("mx1", "mail_tls_cert", "certs/mx1.pem"),
        "mail[mx1].mail_tls_cert",
        "absolute",
    ),
    (
        "cert lacks client name",
        cert_without_client_name,
        "mail[mx2].mail_tls_cert",
        "not valid for mail.example.com",
    ),
    ("key of another cert", foreign_key, "mail[mx2].mail_tls_cert", "does not belong"),
    (
        "peer CA not a file",
        both("mail_tls_ca", "/nonexistent/ca.pem"),
        "mail_tls_ca",
        "cannot read",
    ),
    ("peer CA relative", both("mail_tls_ca", "ca.pem"), "mail_tls_ca", "absolute path"),
    (
        "no host addresses",
        on("mx1", "mail_addresses", None),
        "mail[mx1].mail_addresses",
        "required",
    ),
    (
        "host address not an IP",
        on("mx2", "mail_addresses", ["mx2.example.com"]),
        "mail[mx2].mail_addresses[0]",
        "not an IP address",
    ),
    (
        "both hosts claim one address",
        on("mx2", "mail_addresses", ["192.0.2.1"]),
        "mail_addresses",
        "listed for both mx1 and mx2",
    ),
    ("no nameservers", drop("mail_nameservers"), "mail_nameservers", "authoritative nameservers"),
    (
        "nameserver by name",
        both("mail_nameservers", ["ns1.example.com"]),
        "mail_nameservers[0]",
        "not an IP address",
    ),
    ("lease too short", both("mail_guard_lease", 1.5), "mail_guard_lease", "must exceed"),
    (
        "interval not a number",
        both("mail_guard_interval", "often"),
        "mail_guard_interval",
        "seconds",
    ),
    (
        "propagation bound negative",
        both("mail_guard_propagation", -5),
        "mail_guard_propagation",
        "out of range",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [pytest.param(m, f, w, id=case) for case, m, f, w in BAD_INPUTS],
)
def test_bad_input_names_its_field(
    inventory: Inventory,
    tmp_path: Path,
    mutate: Callable[[Inventory, Path], None],
    field: str,
    words: str,
) -> None:
    mutate(inventory, tmp_path)
    environ = {"MXCTL_TEST_SHORT": "short"}
    with pytest.raises(ConfigError) as caught:
        load_pair(inventory, environ=environ)
    matching = [p for p in caught.value.problems if p.startswith(f"{field}: ")]
    assert matching, f"no problem names {field!r}: {caught.value.problems}"
    assert any(words in p for p in matching), matching


def test_a_missing_path_is_reported_once(inventory: Inventory) -> None:
    inventory["mx1"].pop("mail_tls_cert")
    with pytest.raises(ConfigError) as caught:
        load_pair(inventory, environ={})
    assert caught.value.problems == [
        "mail[mx1].mail_tls_cert: required: an absolute path on the deploying machine"
    ]


def test_every_problem_is_reported_at_once(inventory: Inventory) -> None:
    inventory["mx2"]["mail_role"] = "primary"
    for data in inventory.values():
        data["mail_domains"] = ["example.com", "bad_domain"]
        data["mail_dkim_selector"] = "bad selector"
    with pytest.raises(ConfigError) as caught:
        load_pair(inventory, environ={})
    fields = {p.split(": ")[0] for p in caught.value.problems}
    assert {"mail_role", "mail_domains[1]", "mail_dkim_selector"} <= fields
    # bob@example.org is now in a domain the pair does not serve
    assert "mail_users[1].address" in fields


def test_valid_inventory_gives_the_pair(inventory: Inventory) -> None:
    pair = load_pair(inventory, environ={})
    assert isinstance(pair, MailPair)
    assert (pair.primary.name, pair.standby.name) == ("mx1", "mx2")
    assert pair.peer("mx1").fqdn == "mx2.example.com"
    assert pair.peer("mx2").fqdn == "mx1.example.com"
    assert pair.domains == ("example.com", "example.org")
    assert pair.probe_user.address == "probe@example.com"
    assert [u.address for u in pair.users if not u.probe] == [
        "alice@example.com",
        "bob@example.org",
    ]
    assert pair.aliases == (("postmaster@example.com", "alice@example.com"),)
    assert pair.replication_port == 12345
    assert pair.tunables.message_size_limit == 52428800


def test_secrets_never_show_in_repr_or_errors(inventory: Inventory) -> None:
    pair = load_pair(inventory, environ={})
    assert "a" * 20 not in repr(pair)
    assert "d" * 24 not in repr(pair)
    assert pair.users[0].password.reveal() == "a" * 20
    for data in inventory.values():
        data["mail_replication_password"] = "env:MXCTL_TEST_SHORT"
    with pytest.raises(ConfigError) as caught:
        load_pair(inventory, environ={"MXCTL_TEST_SHORT": "tooshort-secret"})
    assert "tooshort-secret" not in str(caught.value)


def test_env_reference_and_string_tunables(inventory: Inventory) -> None:
    for data in inventory.values():
        data["mail_users"][0] = {"address": "alice@example.com", "password": "env:MXCTL_PW"}
        data["postfix_message_size_limit"] = "10485760"  # as `pyinfra --data` passes it
    pair = load_pair(inventory, environ={"MXCTL_PW": "from-the-env"})
    assert pair.users[0].password.reveal() == "from-the-env"
    assert pair.tunables.message_size_limit == 10485760


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("mail.example.com", True),
        ("a-b.example", True),
        ("example", False),
        ("-a.example", False),
        ("a-.example", False),
        ("a..example", False),
        ("Mail.example.com", False),
        ("host.123", False),
        ("x" * 64 + ".example", False),
        ("", False),
    ],
)
def test_is_hostname(name: str, ok: bool) -> None:
    assert is_hostname(name) is ok


def test_secret_files_are_0600_in_the_factory(tmp_path: Path) -> None:
    ref = factories.write_secret(tmp_path / "s", "value")
    assert os.stat(ref.removeprefix("file:")).st_mode & 0o777 == 0o600
