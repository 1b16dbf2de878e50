"""SSRF-safe downloads: only https, only public addresses, checked on every hop.

A provider hands us a URL to fetch; a hostile or compromised one could point
it at the instance metadata service or a private network. Every hop (the URL
and each redirect, followed by hand) is checked:

- scheme: https only, unless ``require_https`` is off (the local profile);
- host: resolved once through an injectable resolver, and *every* address
  must be public: no loopback, private, link-local, CGNAT, multicast,
  reserved or unspecified address, and never the metadata service
  (169.254.169.254, fd00:ec2::254), also when embedded in IPv4-mapped or
  NAT64 IPv6 addresses. Hosts in ``allow_hosts`` (the emulator on
  127.0.0.1 locally) skip the public-address rule, never the metadata one.

Time-of-check/time-of-use: the request connects to the address that was
checked, never to the name (the URL is rewritten to the IP; the Host header
and the TLS SNI / certificate check keep the original name), so a second
DNS answer (DNS rebinding) cannot swap in another address. Environment
proxies are ignored so nothing else resolves the name for us.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from vidpipe.config import Settings
from vidpipe.errors import DownloadRefused, ProviderError, ProviderRetryable
from vidpipe.providers.http import RETRYABLE_STATUS, describe

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]  # (host, port) → IP address strings

METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Most specific first: Python counts link-local, reserved and unspecified as "private" too.
CATEGORIES = ("loopback", "link_local", "multicast", "unspecified", "reserved", "private")


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DownloadRefused(f"cannot resolve {host!r} ({exc.strerror})") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class DownloadPolicy:
    allow_hosts: frozenset[str] = frozenset()
    require_https: bool = True
    max_redirects: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> DownloadPolicy:
        return cls(allow_hosts=settings.download_allowlist, require_https=settings.download_require_https)


@dataclass(frozen=True)
class Target:
    url: httpx.URL  # as given
    address: str  # the checked address the connection goes to


def address_problem(address: IPAddress) -> str | None:
    """Why a connection to ``address`` is refused, or None for a public address."""
    if address in METADATA_ADDRESSES:
        return "the instance metadata service"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None)
        if embedded is not None:
            return address_problem(embedded)
    for category in CATEGORIES:
        if getattr(address, f"is_{category}"):
            return f"a {category.replace('_', '-')} address"
    if address in CGNAT:
        return "a carrier-grade NAT address"
    if not address.is_global:
        return "not a public address"
    return None


def check_target(url: str | httpx.URL, policy: DownloadPolicy, resolver: Resolver = system_resolver) -> Target:
    """Check one hop; raises DownloadRefused naming the rule it breaks."""
    url = httpx.URL(url)
    allowed_schemes = ("https",) if policy.require_https else ("https", "http")
    if url.scheme not in allowed_schemes:
        raise DownloadRefused(f"refused {url.scheme or 'a scheme-less'} URL: only {' or '.join(allowed_schemes)} "
                              "downloads are allowed")
    if not url.host:
        raise DownloadRefused("refused a URL without a host")
    try:
        addresses = [ipaddress.ip_address(url.host)]
    except ValueError:
        addresses = [ipaddress.ip_address(a) for a in resolver(url.host, url.port or _default_port(url))]
    if not addresses:
        raise DownloadRefused(f"refused {url.host}: it resolves to no address")
    allowlisted = url.host in policy.allow_hosts
    for address in addresses:
        problem = address_problem(address)
        if problem and (not allowlisted or address in METADATA_ADDRESSES):
            raise DownloadRefused(f"refused {url.host}: {address} is {problem}")
    return Target(url=url, address=str(addresses[0]))


@contextmanager
def guarded_stream(url: str, policy: DownloadPolicy, *, client: httpx.Client | None = None,
                   resolver: Resolver = system_resolver,
                   headers_for: Callable[[str], dict[str, str]] = lambda _url: {},
                   timeout_s: float = 60.0) -> Iterator[httpx.Response]:
    """GET ``url`` as a stream after checking it and every redirect; yields a 2xx response.

    ``headers_for(url)`` supplies per-hop headers, so credentials meant for the
    provider's origin are not forwarded to wherever it redirects.
    Raises DownloadRefused, ProviderError (4xx) or ProviderRetryable (429/5xx, transport).
    """
    own_client = client is None
    client = client or httpx.Client(trust_env=False, timeout=timeout_s)
    try:
        for _hop in range(policy.max_redirects + 1):
            target = check_target(url, policy, resolver)
            response = _send_pinned(client, target, headers_for(str(target.url)))
            if response.status_code in REDIRECTS and "location" in response.headers:
                response.close()
                url = str(target.url.join(response.headers["location"]))
                continue
            try:
                _raise_for_status(response)
                yield response
            finally:
                response.close()
            return
        raise DownloadRefused(f"refused: more than {policy.max_redirects} redirects")
    finally:
        if own_client:
            client.close()


def _send_pinned(client: httpx.Client, target: Target, headers: dict[str, str]) -> httpx.Response:
    url = target.url
    pinned = url.copy_with(host=target.address)
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    request = client.build_request("GET", pinned, headers={**headers, "Host": url.netloc.decode("ascii")},
                                   extensions=extensions)
    try:
        return client.send(request, stream=True, follow_redirects=False)
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise ProviderRetryable(f"download from {url.host} failed: {type(exc).__name__}") from exc


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 300:
        return
    response.read()
    reason = f"download failed: {describe(response)}"
    if response.status_code in RETRYABLE_STATUS:
        raise ProviderRetryable(reason)
    raise ProviderError(reason, status=response.status_code)


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
