"""Who leads the controller cluster, and may this controller act now.

The leader holds `/mxctl/<cluster>/leader`, a key created only when absent and bound to
its lease; the key's create revision is the leader's **term** (it only grows, so a newer
leader always has a larger term, and every write of shared state is checked against it).

`may_act` is the pure rule, tested from a table: a controller acts only when etcd
answered, it holds the leader key in the term it won, and its lease is still valid by its
*own* clock with a safety margin to spare. The local deadline is counted from the moment
the last keepalive was *sent* plus the TTL etcd returned, so it always ends before etcd
lets the lease expire; a leader cut off from etcd stops acting before another can win.
`Elector` does the I/O: one `tick()` renews the lease and campaigns. The runner asks
before each step (`ClusterMember.before_step`), so a leader that lost its lease stops
before its next action.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from enum import Enum

from orchestrator.clock import SYSTEM_CLOCK, Clock
from orchestrator.cluster.etcd import Compare, EtcdClient, EtcdRejected, EtcdUnavailable, Put


class Role(Enum):
    LEADER = "leader"
    FOLLOWER = "follower"
    NO_LEADER = "no-leader"  # nobody holds the key this instant
    NO_ETCD = "no-etcd"  # etcd did not answer: no quorum, or unreachable


@dataclass(frozen=True)
class ClusterKeys:
    cluster: str

    def _key(self, name: str) -> str:
        return f"/mxctl/{self.cluster}/{name}"

    @property
    def leader(self) -> str:
        return self._key("leader")

    @property
    def state(self) -> str:
        return self._key("state")

    @property
    def run(self) -> str:
        return self._key("run")

    @property
    def observations(self) -> str:
        return self._key("observations/")


@dataclass(frozen=True)
class LeadershipView:
    """What a controller knows of the leadership after its last tick."""

    etcd_reachable: bool
    holder: str | None = None  # the controller named in the leader key
    term: int | None = None  # the leader key's create revision
    my_term: int | None = None  # the term this controller won, while it believes it holds it
    valid_until: float | None = None  # monotonic: our lease's local deadline
    error: str = ""  # why etcd was not reachable


@dataclass(frozen=True)
class Verdict:
    may_act: bool
    role: Role
    reason: str  # one sentence for the log and the journal
    term: int | None = None


def may_act(me: str, view: LeadershipView, now: float, margin: float) -> Verdict:
    """May controller `me` take an action now (monotonic `now`)?"""
    if not view.etcd_reachable:
        return Verdict(False, Role.NO_ETCD, f"no action: etcd has no quorum for us ({view.error})")
    if view.holder is None or view.term is None:
        return Verdict(False, Role.NO_LEADER, "no action: no controller holds the leadership")
    if view.holder != me:
        return Verdict(
            False, Role.FOLLOWER, f"follower: {view.holder} leads (term {view.term})", view.term
        )
    if view.my_term != view.term:
        return Verdict(
            False,
            Role.FOLLOWER,
            f"no action: the leader key names us in term {view.term}, but we won term "
            f"{view.my_term} (a lease lost and won again: re-read the shared state first)",
            view.term,
        )
    if view.valid_until is None:
        return Verdict(False, Role.FOLLOWER, "no action: our lease has no known deadline")
    left = view.valid_until - now
    if left <= margin:
        return Verdict(
            False,
            Role.FOLLOWER,
            f"no action: our lease has {max(left, 0):.2f} s left by our clock, "
            f"not more than the {margin:.2f} s safety margin (term {view.term})",
            view.term,
        )
    return Verdict(
        True, Role.LEADER, f"leader (term {view.term}, lease {left:.1f} s left)", view.term
    )


class Elector:
    """Keeps this controller's lease alive and campaigns for the leader key."""

    def __init__(
        self,
        client: EtcdClient,
        keys: ClusterKeys,
        name: str,
        ttl: int,
        margin: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.client, self.keys, self.name = client, keys, name
        self.ttl, self.margin, self.clock = ttl, margin, clock
        self.lease: int | None = None
        self.view = LeadershipView(etcd_reachable=False, error="not started")

    def tick(self) -> LeadershipView:
        """Renew the lease (a new one when it expired), then take the leader key if free."""
        previous = self.view
        try:
            valid_until = self._renew()
            self.view = self._campaign(valid_until)
        except EtcdRejected as exc:
            # Our lease expired between the renewal and the campaign (etcd: "requested
            # lease not found"): whatever term it held is over; a new lease next tick.
            self.lease = None
            self.view = LeadershipView(True, previous.holder, previous.term, None, None, str(exc))
        except EtcdUnavailable as exc:
            # Keep what we believed; `may_act` refuses anyway without etcd.
            self.view = LeadershipView(
                False, previous.holder, previous.term, previous.my_term,
                previous.valid_until, str(exc),
            )  # fmt: skip
        return self.view

    def _renew(self) -> float:
        sent = self.clock.monotonic()
        if self.lease is not None:
            left = self.client.keepalive(self.lease)
            if left > 0:
                return sent + left
            self.lease = None  # expired: whatever term it held is over
        self.lease, granted = self.client.grant(self.ttl)
        return sent + granted

    def _campaign(self, valid_until: float) -> LeadershipView:
        assert self.lease is not None
        record = json.dumps({"name": self.name, "lease": self.lease}).encode()
        result = self.client.txn(
            [Compare(self.keys.leader, "CREATE", 0)], [Put(self.keys.leader, record, self.lease)]
        )
        if result.succeeded:
            return LeadershipView(True, self.name, result.revision, result.revision, valid_until)
        if not result.current:  # deleted between the compare and the read: try next tick
            return LeadershipView(True, None, None, None, valid_until)
        current = result.current[0]
        holder = str(json.loads(current.value).get("name", ""))
        term = current.create_revision
        # The key is ours only when it is bound to our live lease; a key left by our
        # expired lease (etcd deletes it) or a name clash must not count as ours.
        mine = current.lease == self.lease and holder == self.name
        return LeadershipView(True, holder, term, term if mine else None, valid_until)

    def verdict(self) -> Verdict:
        return may_act(self.name, self.view, self.clock.monotonic(), self.margin)

    def resign(self) -> None:
        """Give the leadership up at once (a clean stop): revoking the lease deletes the key."""
        if self.lease is not None:
            with contextlib.suppress(EtcdUnavailable):  # it expires on its own within the TTL
                self.client.revoke(self.lease)
            self.lease = None
        self.view = LeadershipView(False, error="resigned")
