"""The hosts the server may fetch from on a client's behalf (``remote_fetch``: a batch line's audio ``url``, a chat
message's ``audio_url``, a batch's webhook): the operator's list
(``STT_FETCH_ALLOWED_HOSTS``), nothing else. A URL's host must be listed (a name, ``*.`` and a domain for its
subdomains, an IP address or a network); and every address its name resolves to must be a public one, unless that
address is itself listed (an IP or a network): loopback, private, link-local (the cloud metadata address
169.254.169.254 among them), shared and reserved addresses are refused, before any connection is made. Redirects are
not followed by the fetch, so a listed host cannot send it elsewhere; and the fetch connects to the very address
that was checked (``pinned``), so a name that resolves differently the second time (DNS rebinding) changes nothing."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import InvalidInputError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]


class UrlNotAllowed(InvalidInputError):
    code = "url_not_allowed"


def resolve(host: str) -> list[str]:
    """The addresses ``host`` resolves to (every family)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})


@dataclass(frozen=True)
class AllowedHosts:
    names: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()
    """From ``*.example.com``: ``.example.com``, any of its subdomains."""
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowedHosts:
        """Comma-separated entries: ``media.example.com``, ``*.example.com``, ``10.1.2.3``, ``10.0.0.0/8``."""
        names, domains, networks = set(), [], []
        for entry in (part.strip().lower() for part in text.split(",")):
            if not entry:
                continue
            if entry.startswith("*."):
                domains.append(entry[1:])
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(domains), tuple(networks))

    def check(self, url: str, resolver: Resolver = resolve, where: str = "url") -> Address:
        """The address to fetch ``url`` from; ``UrlNotAllowed`` (naming the request's field ``where``) unless the
        server may fetch it."""
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        if not host:
            raise InvalidInputError("The url names no host.", input=where)
        literal = _address(host)
        if not self._listed(host, literal):
            raise UrlNotAllowed(
                f"The server does not fetch from {host!r}: its operator lists the hosts it may fetch from "
                "(STT_FETCH_ALLOWED_HOSTS).", input=where,
            )
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(host)]
            except (OSError, ValueError):
                raise InvalidInputError(f"The url's host {host!r} could not be resolved.", input=where,
                                        code="audio_url_unreachable") from None
        for address in addresses:
            if not address.is_global and not self._covers(address):
                raise UrlNotAllowed(
                    f"{host!r} resolves to {address}, a {_kind(address)} address the server does not fetch from "
                    "unless STT_FETCH_ALLOWED_HOSTS lists it.", input=where,
                )
        if not addresses:
            raise InvalidInputError(f"The url's host {host!r} could not be resolved.", input=where,
                                    code="audio_url_unreachable")
        return addresses[0]

    def _listed(self, host: str, literal: Address | None) -> bool:
        if literal is not None:
            return self._covers(literal)
        return host in self.names or any(host.endswith(domain) for domain in self.domains)

    def _covers(self, address: Address) -> bool:
        return any(address.version == network.version and address in network for network in self.networks)


def _address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _kind(address: Address) -> str:
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


@dataclass(frozen=True)
class PinnedRequest:
    """A request for ``url`` that connects to ``address`` (checked), naming the host as the URL does: in the ``Host``
    header and, over TLS, in the SNI and the certificate check."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


def pinned(url: str, address: Address) -> PinnedRequest:
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions = {"sni_hostname": host} if parts.scheme == "https" and _address(host) is None else {}
    return PinnedRequest(parts._replace(netloc=netloc).geturl(), {"Host": host_header}, extensions)
