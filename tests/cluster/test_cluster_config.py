"""The [cluster] section: parsed with errors naming the field; absent means no cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.cluster_section import parse_cluster
from orchestrator.config.fields import Reader


def parse(raw: dict) -> tuple[object, list[str]]:  # type: ignore[type-arg]
    reader = Reader({})
    value = parse_cluster(reader, {"members": ["a", "ctl1"], **raw})
    return value, reader.problems


def test_a_loopback_cluster_parses() -> None:
    config, problems = parse({
        "name": "mail", "member": "ctl1", "endpoints": ["http://127.0.0.1:2379/"],
        "allow_insecure_http": True, "lease_ttl": 6,
    })  # fmt: skip
    assert problems == []
    assert config.endpoints == ("http://127.0.0.1:2379",)  # type: ignore[attr-defined]
    assert config.lease_ttl == 6 and config.safety_margin == 1.2  # type: ignore[attr-defined]
    assert config.tls is None  # type: ignore[attr-defined]


def test_tls_files_are_read_from_paths(tmp_path: Path) -> None:
    for name in ("ca.pem", "c.pem", "c.key"):
        (tmp_path / name).write_text("x")
    config, problems = parse({
        "name": "mail", "member": "ctl1", "endpoints": ["https://10.0.0.5:2379"],
        "ca": str(tmp_path / "ca.pem"), "cert": str(tmp_path / "c.pem"),
        "key": str(tmp_path / "c.key"),
    })  # fmt: skip
    assert problems == []
    assert config.tls.key == tmp_path / "c.key"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"member": "a", "endpoints": ["http://x:1"], "allow_insecure_http": True},
         "cluster.name: required"),
        ({"name": "m", "member": "a b", "endpoints": ["http://x:1"], "allow_insecure_http": True},
         "cluster.member: 'a b': letters, digits"),
        ({"name": "m", "member": "a"}, "cluster.endpoints: required"),
        ({"name": "m", "member": "a", "endpoints": ["http://10.0.0.5:2379"]},
         "cluster.endpoints[0]: http://10.0.0.5:2379 is plain http://"),
        ({"name": "m", "member": "a", "endpoints": ["etcd:2379"]},
         "cluster.endpoints[0]: 'etcd:2379' must be an http(s):// URL"),
        ({"name": "m", "member": "a", "endpoints": ["https://x:1"]},
         "cluster: https:// endpoints need ca, cert and key"),
        ({"name": "m", "member": "a", "endpoints": ["https://x:1"], "ca": "/nonexistent"},
         "cluster.ca: /nonexistent is not a readable file"),
        ({"name": "m", "member": "a", "endpoints": ["https://x:1"], "ca": "/nonexistent"},
         "cluster.cert: required"),
        ({"name": "m", "member": "a", "endpoints": ["http://x:1"], "allow_insecure_http": True,
          "lease_ttl": 1}, "cluster.lease_ttl: must be between 2 and 300"),
        ({"name": "m", "member": "a", "endpoints": ["http://x:1"], "allow_insecure_http": True,
          "lease_ttl": 4, "safety_margin": 2}, "cluster.safety_margin: 2 s leaves too little"),
        ({"name": "m", "member": "a", "endpoints": ["http://x:1"], "allow_insecure_http": True,
          "ttl": 4}, "cluster.ttl: unknown setting"),
        ({"name": "m", "member": "z", "endpoints": ["http://x:1"], "allow_insecure_http": True},
         "cluster.members: must list this controller ('z') too"),
        ({"name": "m", "member": "a", "endpoints": ["http://x:1"], "allow_insecure_http": True,
          "members": ["a", "a"]}, "cluster.members: lists a controller twice"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field(raw: dict, problem: str) -> None:  # type: ignore[type-arg]
    _, problems = parse(raw)
    assert any(p.startswith(problem) for p in problems), problems


def test_absent_section_means_a_single_controller() -> None:
    from orchestrator.config.loader import parse_config

    assert parse_config("", only=["cluster"]).cluster is None
    text = '[cluster]\nname = "m"\nmember = "a"\nmembers = ["a"]\nendpoints = ["http://127.0.0.1:2379"]\n'
    text += "allow_insecure_http = true\n"
    assert parse_config(text, only=["cluster"]).cluster is not None


def test_a_lease_a_cycle_can_outlast_is_refused() -> None:
    from orchestrator.config.loader import parse_config
    from orchestrator.errors import ConfigError

    text = '[policy]\ninterval = 5\n[cluster]\nname = "m"\nmember = "a"\nmembers = ["a"]\n'
    text += 'endpoints = ["http://127.0.0.1:2379"]\nallow_insecure_http = true\nlease_ttl = 10\n'
    with pytest.raises(
        ConfigError, match=r"cluster.lease_ttl: 10 s is too short for policy.interval = 5 s"
    ):
        parse_config(text, only=["cluster", "policy"])
    assert parse_config(text.replace("interval = 5", "interval = 4"), only=["cluster", "policy"])
