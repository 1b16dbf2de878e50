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
