import http.server
import threading
import time

import httpx
import pytest

from vidpipe.errors import DownloadRefused, ProviderError, ProviderRetryable
from vidpipe.net.download_guard import DownloadPolicy, check_target, guarded_stream

DEPLOYED = DownloadPolicy()
LOCAL = DownloadPolicy(allow_hosts=frozenset({"127.0.0.1"}), require_https=False)
DNS = {"cdn.example.com": ["93.184.216.34"], "rebind.example.com": ["93.184.216.34", "10.0.0.7"],
       "v6.example.com": ["2606:4700::6810:85e5"], "inside.example.com": ["fd00:ec2::254"]}


def resolver(host: str, port: int) -> list[str]:
    return DNS[host]


@pytest.mark.parametrize(("url", "why"), [
    ("https://127.0.0.1/v.mp4", "loopback"),
    ("https://[::1]/v.mp4", "loopback"),
    ("https://10.1.2.3/v.mp4", "private"),
    ("https://192.168.0.10/v.mp4", "private"),
    ("https://172.16.5.4/v.mp4", "private"),
    ("https://169.254.169.254/latest/meta-data/", "instance metadata service"),
    ("https://[fd00:ec2::254]/latest/meta-data/", "instance metadata service"),
    ("https://169.254.10.1/v.mp4", "link-local"),
    ("https://[fe80::1]/v.mp4", "link-local"),
    ("https://100.64.1.1/v.mp4", "carrier-grade NAT"),
    ("https://224.0.0.1/v.mp4", "multicast"),
    ("https://240.0.0.1/v.mp4", "reserved"),
    ("https://0.0.0.0/v.mp4", "unspecified"),
    ("https://[::ffff:127.0.0.1]/v.mp4", "loopback"),
    ("https://[64:ff9b::a9fe:a9fe]/v.mp4", "instance metadata service"),
    # IPv6 transition forms that carry an IPv4 address the traffic ends up at
    ("https://[2002:a9fe:a9fe::1]/v.mp4", r"instance metadata service \(169.254.169.254 embedded as 6to4\)"),
    ("https://[2002:7f00:1::1]/v.mp4", r"loopback address \(127.0.0.1 embedded as 6to4\)"),
    ("https://[2002:a00:1::]/v.mp4", r"private address \(10.0.0.1 embedded as 6to4\)"),
    ("https://[2001:0:4136:e378:8000:63bf:5601:5601]/v.mp4",
     r"instance metadata service \(169.254.169.254 embedded as Teredo\)"),
    ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/v.mp4", r"private address \(10.0.0.1 embedded as Teredo\)"),
    ("https://[::a9fe:a9fe]/v.mp4", r"instance metadata service \(169.254.169.254 embedded as IPv4-compatible\)"),
    ("https://[64:ff9b::a00:1]/v.mp4", r"private address \(10.0.0.1 embedded as NAT64\)"),
    ("https://[::ffff:a9fe:a9fe]/v.mp4", r"instance metadata service \(169.254.169.254 embedded as IPv4-mapped\)"),
    ("https://rebind.example.com/v.mp4", "10.0.0.7 is a private address"),
    ("https://inside.example.com/v.mp4", "instance metadata service"),
])
def test_given_a_non_public_destination_when_checked_then_it_is_refused(url, why):
    with pytest.raises(DownloadRefused, match=why):
        check_target(url, DEPLOYED, resolver)


@pytest.mark.parametrize("url", ["http://cdn.example.com/v.mp4", "ftp://cdn.example.com/v.mp4",
                                 "file:///etc/passwd"])
def test_given_https_required_when_another_scheme_is_used_then_it_is_refused(url):
    with pytest.raises(DownloadRefused, match="only https downloads are allowed"):
        check_target(url, DEPLOYED, resolver)


def test_given_public_hosts_when_checked_then_they_pass_with_the_address_to_connect_to():
    assert check_target("https://cdn.example.com/v.mp4", DEPLOYED, resolver).address == "93.184.216.34"
    assert check_target("https://v6.example.com/v.mp4", DEPLOYED, resolver).address == "2606:4700::6810:85e5"


@pytest.mark.parametrize("address", ["2002:5db8:d822::1", "::ffff:5db8:d822", "64:ff9b::5db8:d822"])
def test_given_a_transition_form_of_a_public_ipv4_when_checked_then_it_passes(address):
    assert check_target(f"https://[{address}]/v.mp4", DEPLOYED, resolver).address == address


def test_given_the_local_profile_when_the_emulator_is_on_127_0_0_1_then_it_is_allowed_over_http():
    assert check_target("http://127.0.0.1:8765/files/v.mp4", LOCAL, resolver).address == "127.0.0.1"


def test_given_the_local_profile_when_another_private_host_is_used_then_it_is_still_refused():
    with pytest.raises(DownloadRefused, match="private"):
        check_target("http://10.0.0.5/v.mp4", LOCAL, resolver)


def test_given_an_allowlisted_host_when_it_is_the_metadata_address_then_it_is_refused_anyway():
    policy = DownloadPolicy(allow_hosts=frozenset({"169.254.169.254"}), require_https=False)
    with pytest.raises(DownloadRefused, match="metadata"):
        check_target("http://169.254.169.254/latest/", policy, resolver)


class Server:
    """A MockTransport answering per Host header; records what was sent where."""

    def __init__(self, routes):
        self.routes = routes
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return self.routes[(request.headers["host"], request.url.path)]()

    def client(self):
        return httpx.Client(transport=httpx.MockTransport(self))


def download(url, server, policy=DEPLOYED, headers_for=lambda _url: {}):
    with guarded_stream(url, policy, client=server.client(), resolver=resolver, headers_for=headers_for) as response:
        return response.read()


def test_given_a_public_url_when_downloading_then_it_connects_to_the_checked_address_keeping_the_name():
    server = Server({("cdn.example.com", "/v.mp4"): lambda: httpx.Response(200, content=b"mp4")})
    assert download("https://cdn.example.com/v.mp4", server) == b"mp4"
    [sent] = server.sent
    assert sent.url.host == "93.184.216.34"  # pinned: no second DNS lookup can change it
    assert sent.headers["host"] == "cdn.example.com"
    assert sent.extensions["sni_hostname"] == "cdn.example.com"  # TLS still verifies the name


def test_given_a_redirect_to_a_private_address_when_downloading_then_it_is_refused_before_connecting():
    server = Server({("cdn.example.com", "/v.mp4"): lambda: httpx.Response(
        302, headers={"location": "https://169.254.169.254/latest/meta-data/iam"})})
    with pytest.raises(DownloadRefused, match="metadata"):
        download("https://cdn.example.com/v.mp4", server)
    assert len(server.sent) == 1


def test_given_a_redirect_to_http_when_https_is_required_then_it_is_refused():
    server = Server({("cdn.example.com", "/v.mp4"): lambda: httpx.Response(
        301, headers={"location": "http://cdn.example.com/v.mp4"})})
    with pytest.raises(DownloadRefused, match="only https"):
        download("https://cdn.example.com/v.mp4", server)


def test_given_a_cross_origin_redirect_when_downloading_then_credentials_stay_with_their_origin():
    server = Server({
        ("video.example.com", "/v1/videos/1/content"): lambda: httpx.Response(
            307, headers={"location": "https://cdn.example.com/signed/v.mp4"}),
        ("cdn.example.com", "/signed/v.mp4"): lambda: httpx.Response(200, content=b"mp4")})
    DNS["video.example.com"] = ["93.184.216.35"]

    def headers_for(url):
        return {"Authorization": "Bearer sk"} if url.startswith("https://video.example.com/") else {}

    assert download("https://video.example.com/v1/videos/1/content", server, headers_for=headers_for) == b"mp4"
    first, second = server.sent
    assert first.headers["authorization"] == "Bearer sk"
    assert "authorization" not in second.headers


def test_given_endless_redirects_when_downloading_then_it_stops():
    server = Server({("cdn.example.com", "/v.mp4"): lambda: httpx.Response(302, headers={"location": "/v.mp4"})})
    with pytest.raises(DownloadRefused, match="more than 5 redirects"):
        download("https://cdn.example.com/v.mp4", server)
    assert len(server.sent) == 6


@pytest.mark.parametrize(("status", "error"), [(403, ProviderError), (404, ProviderError),
                                               (429, ProviderRetryable), (503, ProviderRetryable)])
def test_given_an_error_status_when_downloading_then_it_is_classified(status, error):
    server = Server({("cdn.example.com", "/v.mp4"): lambda: httpx.Response(status, text="no")})
    with pytest.raises(error, match=f"HTTP {status}"):
        download("https://cdn.example.com/v.mp4", server)


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def now(self) -> float:
        return self.t


class Body(httpx.SyncByteStream):
    """A response body of ``chunks`` pieces, each arriving ``every_s`` seconds (on the fake clock)."""

    def __init__(self, clock: FakeClock, chunks: int, size: int, every_s: float):
        self.clock, self.chunks, self.size, self.every_s = clock, chunks, size, every_s
        self.sent = 0

    def __iter__(self):
        for _ in range(self.chunks):
            self.clock.t += self.every_s
            self.sent += 1
            yield b"x" * self.size


def paced_download(body: Body, clock: FakeClock, policy: DownloadPolicy) -> bytes:
    server = Server({("cdn.example.com", "/v.mp4"): lambda: httpx.Response(200, stream=body)})
    with guarded_stream("https://cdn.example.com/v.mp4", policy, client=server.client(), resolver=resolver,
                        now=clock.now) as response:
        return b"".join(response.iter_bytes())


def test_given_a_body_trickling_a_byte_a_second_when_downloading_then_it_stops_after_the_grace_period():
    clock = FakeClock()
    body = Body(clock, chunks=100_000, size=1, every_s=1.0)
    policy = DownloadPolicy(min_bytes_per_s=1024, min_rate_grace_s=10, deadline_s=3600)

    with pytest.raises(ProviderRetryable, match=r"^download from cdn.example.com too slow: 11 bytes in 11.0 s "
                                                r"\(minimum 1024 B/s after 10 s\)$"):
        paced_download(body, clock, policy)
    assert body.sent == 11  # not the hour the deadline alone would allow


def test_given_a_steady_body_longer_than_the_deadline_when_downloading_then_it_stops_at_the_deadline():
    clock = FakeClock()
    body = Body(clock, chunks=1000, size=64 * 1024, every_s=1.0)  # 64 KiB/s: above the minimum rate
    policy = DownloadPolicy(min_bytes_per_s=1024, min_rate_grace_s=10, deadline_s=60)

    with pytest.raises(ProviderRetryable, match=r"exceeded its 60 s deadline \(3997696 bytes of the body received\)"):
        paced_download(body, clock, policy)
    assert body.sent == 61


def test_given_a_healthy_body_when_downloading_then_every_byte_arrives():
    clock = FakeClock()
    body = Body(clock, chunks=20, size=256 * 1024, every_s=0.5)  # 512 KiB/s for 10 s
    policy = DownloadPolicy(min_bytes_per_s=64 * 1024, min_rate_grace_s=1, deadline_s=60)

    assert len(paced_download(body, clock, policy)) == 20 * 256 * 1024


def test_given_redirect_hops_that_used_up_the_deadline_when_the_next_hop_comes_then_it_is_not_requested():
    clock = FakeClock()

    def slow_redirect():
        clock.t += 90
        return httpx.Response(302, headers={"location": "https://cdn.example.com/next.mp4"})

    server = Server({("cdn.example.com", "/v.mp4"): slow_redirect,
                     ("cdn.example.com", "/next.mp4"): lambda: httpx.Response(200, content=b"mp4")})
    with pytest.raises(ProviderRetryable, match="exceeded its 60 s deadline"):
        with guarded_stream("https://cdn.example.com/v.mp4", DownloadPolicy(deadline_s=60), client=server.client(),
                            resolver=resolver, now=clock.now):
            pass
    assert len(server.sent) == 1


def test_given_download_settings_when_the_policy_is_built_then_it_carries_them():
    from vidpipe.config import Settings

    policy = DownloadPolicy.from_settings(Settings(download_deadline_s=90, download_min_bytes_per_s=2048,
                                                   download_min_rate_grace_s=5))
    assert (policy.deadline_s, policy.min_bytes_per_s, policy.min_rate_grace_s) == (90, 2048, 5)


class TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Sends headers for a large body, then one byte every 10 ms until the client goes away."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        try:
            for _ in range(1000):  # 10 s at most, whatever the client does
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up on us: that is the point of the test

    def log_message(self, *args):
        return


@pytest.fixture
def trickle_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TrickleHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v.mp4"
    server.shutdown()
    server.server_close()


def test_given_a_real_server_trickling_bytes_when_downloading_then_the_read_ends_on_the_minimum_rate(trickle_server):
    policy = DownloadPolicy(allow_hosts=frozenset({"127.0.0.1"}), require_https=False,
                            min_bytes_per_s=10_000, min_rate_grace_s=0.2, deadline_s=5)
    started = time.monotonic()

    with pytest.raises(ProviderRetryable, match="too slow"):
        with guarded_stream(trickle_server, policy, timeout_s=5) as response:
            for _ in response.iter_bytes():
                pass

    assert time.monotonic() - started < 2  # per-read timeouts alone would have let it run 10 s
