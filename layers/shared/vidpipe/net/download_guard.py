"""SSRF-safe downloads: only https, only public addresses, checked on every hop.

A provider hands us a URL to fetch; a hostile or compromised one could point
it at the instance metadata service or a private network. Every hop (the URL
and each redirect, followed by hand) is checked:

- scheme: https only, unless ``require_https`` is off (the local profile);
- host: resolved once through an injectable resolver, and *every* address
  must be public: no loopback, private, link-local, CGNAT, multicast,
  reserved or unspecified address, and never the metadata service
  (169.254.169.254, fd00:ec2::254), also when an IPv6 transition form
  carries it: IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96), NAT64
  (64:ff9b::/96), 6to4 (2002::/16, bits 16-47) and Teredo (2001::/32, the
  client address inverted in the last 32 bits). Hosts in ``allow_hosts``
  (the emulator on 127.0.0.1 locally) skip the public-address rule, never
  the metadata one.

Time-of-check/time-of-use: the request connects to the address that was
checked, never to the name (the URL is rewritten to the IP; the Host header
and the TLS SNI / certificate check keep the original name), so a second
DNS answer (DNS rebinding) cannot swap in another address. Environment
proxies are ignored so nothing else resolves the name for us.

Time: besides the size cap (enforced where the bytes are stored), a download
has a total deadline (from the first hop to the last byte) and, after a grace
period, a minimum average rate, checked as each piece of the body arrives.
A body trickling a byte a second therefore ends within the deadline, plus
at most one read timeout for a read that never returns. Both breaches raise
ProviderRetryable with a one-line reason. The deadline is also cut to the
time the step has left (``vidpipe.deadline``), and so is the read timeout, so
a download in a Lambda near its timeout is handed back, not killed.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import httpx

from vidpipe import deadline
from vidpipe.config import Settings
from vidpipe.errors import DownloadRefused, ProviderError, ProviderRetryable
from vidpipe.providers.http import RETRYABLE_STATUS, describe

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]  # (host, port) → IP address strings

METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Forms that are only another way to write the IPv4 address; 6to4 and Teredo
# addresses are IPv6 addresses in their own right and are checked as such too.
SPELLINGS_OF_IPV4 = frozenset({"IPv4-mapped", "IPv4-compatible", "NAT64"})
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
    deadline_s: float = 420.0  # first hop to last byte
    min_bytes_per_s: int = 64 * 1024  # average over the body once the grace period is over; 0: no check
    min_rate_grace_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DownloadPolicy:
        return cls(allow_hosts=settings.download_allowlist, require_https=settings.download_require_https,
                   deadline_s=settings.download_deadline_s, min_bytes_per_s=settings.download_min_bytes_per_s,
                   min_rate_grace_s=settings.download_min_rate_grace_s)


@dataclass(frozen=True)
class Target:
    url: httpx.URL  # as given
    address: str  # the checked address the connection goes to


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 transition form routes to, with the form's name; None if none."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address.teredo is not None:
        return "Teredo", address.teredo[1]  # (server, client): traffic goes to the client
    if address in NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1, which are what they are
        return "IPv4-compatible", ipaddress.IPv4Address(int(address))
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why a connection to ``address`` is refused, or None for a public address."""
    if address in METADATA_ADDRESSES:
        return "the instance metadata service"
    if isinstance(address, ipaddress.IPv6Address) and (embedded := embedded_ipv4(address)) is not None:
        form, ipv4 = embedded
        problem = address_problem(ipv4)
        if problem is not None:
            return f"{problem} ({ipv4} embedded as {form})"
        if form in SPELLINGS_OF_IPV4:
            return None  # the IPv4 address itself, written as IPv6 (Python calls ::/8 "reserved")
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
                   timeout_s: float = 60.0, now: Callable[[], float] = time.monotonic) -> Iterator[httpx.Response]:
    """GET ``url`` as a stream after checking it and every redirect; yields a 2xx response.

    ``headers_for(url)`` supplies per-hop headers, so credentials meant for the
    provider's origin are not forwarded to wherever it redirects. The response's
    body is paced: reading it raises ProviderRetryable past ``policy.deadline_s``
    (counted from this call, on ``now``) or below ``policy.min_bytes_per_s``.
    Raises DownloadRefused, ProviderError (4xx) or ProviderRetryable (429/5xx, transport, too slow).
    """
    step = deadline.current()
    if step.bounded:  # the download must end, and a read give up, while the step can still hand back
        budget_s = step.real_seconds(step.budget_s())
        policy = replace(policy, deadline_s=min(policy.deadline_s, budget_s))
        timeout_s = max(0.001, min(timeout_s, budget_s))
    own_client = client is None
    client = client or httpx.Client(trust_env=False, timeout=timeout_s)
    started = now()
    try:
        for _hop in range(policy.max_redirects + 1):
            target = check_target(url, policy, resolver)
            _check_deadline(target.url.host, policy, started, now(), 0)
            response = _send_pinned(client, target, headers_for(str(target.url)))
            response.stream = PacedStream(response.stream, target.url.host, policy, started, now)
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


class PacedStream(httpx.SyncByteStream):
    """A response body that enforces the download's deadline and minimum rate as it is read."""

    def __init__(self, inner: httpx.SyncByteStream, host: str, policy: DownloadPolicy, started: float,
                 now: Callable[[], float]):
        self.inner, self.host, self.policy, self.started, self.now = inner, host, policy, started, now

    def __iter__(self) -> Iterator[bytes]:
        body_started = self.now()
        received = 0
        for chunk in self.inner:
            received += len(chunk)
            at = self.now()
            _check_deadline(self.host, self.policy, self.started, at, received)
            _check_rate(self.host, self.policy, body_started, at, received)
            yield chunk

    def close(self) -> None:
        self.inner.close()


def _check_deadline(host: str, policy: DownloadPolicy, started: float, at: float, received: int) -> None:
    if at - started > policy.deadline_s:
        raise ProviderRetryable(f"download from {host} exceeded its {policy.deadline_s:g} s deadline "
                                f"({received} bytes of the body received)")


def _check_rate(host: str, policy: DownloadPolicy, body_started: float, at: float, received: int) -> None:
    elapsed = at - body_started
    if policy.min_bytes_per_s and elapsed > policy.min_rate_grace_s and received < policy.min_bytes_per_s * elapsed:
        raise ProviderRetryable(f"download from {host} too slow: {received} bytes in {elapsed:.1f} s "
                                f"(minimum {policy.min_bytes_per_s} B/s after {policy.min_rate_grace_s:g} s)")


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
