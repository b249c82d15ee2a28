"""Issue one certificate for a set of names from an ACME server, answering DNS-01.

The protocol is certbot's `acme` library (RFC 8555: JWS signing, nonces and their
retries, order and authorization polling, finalisation), maintained by the EFF with
certbot itself; we write only the DNS-01 part, through mxctl's DNS providers, which is
what certbot's DNS plugins would otherwise do with credentials of their own.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
from acme import challenges, client, crypto_util, errors, messages
from josepy.jwa import RS256
from josepy.jwk import JWKRSA

from orchestrator.certs.dns01 import ChallengeRecords
from orchestrator.certs.renewal import CertFacts
from orchestrator.certs.store import cert_facts
from orchestrator.errors import CertError

log = logging.getLogger(__name__)
USER_AGENT = "mxctl"


@dataclass(frozen=True)
class AcmeServer:
    directory_url: str
    ca_bundle: Path | None = None  # trust for the directory's HTTPS (a private ACME CA)
    contact: str | None = None  # an e-mail address for expiry notices
    timeout: float = 30.0  # one HTTP request
    order_timeout: float = 120.0  # validation + finalisation of one order


@dataclass(frozen=True)
class Issued:
    chain_pem: bytes
    facts: CertFacts
    challenge_owners: tuple[str, ...]  # the TXT owners written (and removed again)


class AcmeIssuer:
    def __init__(self, server: AcmeServer, account_key: JWKRSA) -> None:
        self.server = server
        self.account_key = account_key

    def issue(self, names: Sequence[str], key_pem: bytes, records: ChallengeRecords) -> Issued:
        """A certificate for `names` with `key_pem`; CertError (nothing stored) otherwise.
        The challenge records are removed whether issuance worked or not."""
        try:
            acme = self._client()
            order = acme.new_order(crypto_util.make_csr(key_pem, list(names)))
            answers = []
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # validated recently for this account (authorization reuse)
                challb = _dns01(authz)
                response, validation = challb.response_and_validation(self.account_key)
                records.publish(authz.body.identifier.value, validation)
                answers.append((challb, response))
            owners = tuple(sorted(records.published))
            records.wait_served()
            for challb, response in answers:
                acme.answer_challenge(challb, response)
            # acme compares this deadline with its own naive datetime.now().
            deadline = datetime.datetime.now() + datetime.timedelta(
                seconds=self.server.order_timeout
            )
            done = acme.poll_and_finalize(order, deadline)
        except errors.ValidationError as exc:
            raise CertError(f"the ACME server refused the DNS-01 challenge: {exc}") from None
        except errors.TimeoutError:
            raise CertError(
                f"the ACME order for {', '.join(names)} was not done within "
                f"{self.server.order_timeout:g} s"
            ) from None
        except messages.Error as exc:
            raise CertError(f"the ACME server answered an error: {exc}") from None
        except (errors.Error, requests.RequestException) as exc:
            raise CertError(
                f"ACME server {self.server.directory_url} unreachable or unusable: {exc}"
            ) from None
        finally:
            problems = records.cleanup()
            for problem in problems:
                log.warning("%s", problem)
        chain = done.fullchain_pem.encode()
        return Issued(chain, cert_facts(chain), owners)

    def _client(self) -> client.ClientV2:
        net = client.ClientNetwork(
            self.account_key,
            alg=RS256,
            user_agent=USER_AGENT,
            timeout=int(self.server.timeout),
        )
        if self.server.ca_bundle is not None:
            # acme types verify_ssl as bool but hands it to requests' `verify`, which also
            # takes the path of a CA bundle: the way to trust a private ACME CA only here.
            net.verify_ssl = str(self.server.ca_bundle)  # type: ignore[assignment]
        directory = client.ClientV2.get_directory(self.server.directory_url, net)
        acme = client.ClientV2(directory, net)
        contact = (f"mailto:{self.server.contact}",) if self.server.contact else ()
        registration = messages.NewRegistration(contact=contact, terms_of_service_agreed=True)
        try:
            acme.new_account(registration)
        except errors.ConflictError as known:
            # The key already has an account: use it (one account, kept across runs).
            acme.query_registration(
                messages.RegistrationResource(uri=known.location, body=messages.Registration())
            )
        return acme


def _dns01(authz: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challb in authz.body.challenges:
        if isinstance(challb.chall, challenges.DNS01):
            return challb
    offered = ", ".join(c.chall.typ for c in authz.body.challenges)
    raise CertError(
        f"the ACME server offers no dns-01 challenge for {authz.body.identifier.value} "
        f"(offered: {offered})"
    )
