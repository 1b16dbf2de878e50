"""Several video providers on one emulator (``/p/<name>/``): each with its own faults,
jobs, calls and bill items, and provider-side failures with a capacity or a
content-policy reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emulator_helpers import API_KEY

from vidpipe_local.emulator import Emulator

GENERIC = {"prompt": "a red ball", "model": "vidgen-1", "duration_s": 1, "fps": 12, "resolution": "160x96"}
OPENAI = {"prompt": "a red ball", "model": "sora-2", "seconds": "4", "size": "160x96"}


@pytest.fixture
def emulator(clock) -> Iterator[Emulator]:
    with Emulator(api_key=API_KEY, clock=clock, default_eta_s=30.0, providers=("alpha", "beta")) as emu:
        yield emu


def test_given_a_fault_on_one_provider_when_both_are_called_then_only_that_one_fails(client, emulator):
    emulator.provider("alpha").faults.add_spec("video.submit:503:times=always")

    down = client.post("/p/alpha/v1/video/generate", json=GENERIC)
    up = client.post("/p/beta/v1/video/generate", json=GENERIC)
    root = client.post("/v1/video/generate", json=GENERIC)

    assert (down.status_code, up.status_code, root.status_code) == (503, 200, 200)
    assert down.headers["Retry-After"] == "1"
    assert [(c.provider, c.status) for c in emulator.provider("alpha").calls] == [("alpha", 503)]
    assert [c.provider for c in emulator.calls] == ["alpha", "beta", None]


def test_given_jobs_on_two_providers_when_billed_then_each_item_names_its_provider(client, emulator, clock):
    beta = client.post("/p/beta/v1/video/generate", json=GENERIC).json()
    client.post("/p/alpha/v1/videos", json=OPENAI)

    assert client.get(f"/p/alpha/v1/video/generations/{beta['id']}").status_code == 404  # not alpha's job
    assert beta["video_url"] is None
    clock.advance(60)
    status = client.get(f"/p/beta/v1/video/generations/{beta['id']}").json()
    assert status["video_url"].startswith(f"{emulator.url}/p/beta/files/videos/")
    assert client.get(status["video_url"]).status_code == 200

    assert sorted((i["provider"], i["model"]) for i in emulator.bill()["items"]) == [("alpha", "sora-2"),
                                                                                     ("beta", "vidgen-1")]
    assert [i["model"] for i in client.get("/p/beta/_emulator/bill").json()["items"]] == ["vidgen-1"]
    assert client.get("/_emulator/bill").json()["totals"]["video"]["jobs"] == 2


def test_given_faults_over_http_on_a_provider_when_listed_then_they_are_that_providers_alone(anonymous, emulator):
    created = anonymous.post("/p/beta/_emulator/faults", json={"spec": "video.status:500:times=2"})

    assert created.status_code == 201
    assert [f["kind"] for f in anonymous.get("/p/beta/_emulator/faults").json()["faults"]] == ["500"]
    assert anonymous.get("/p/alpha/_emulator/faults").json()["faults"] == []
    assert anonymous.get("/_emulator/faults").json()["faults"] == []
    assert anonymous.get("/p/gamma/_emulator/faults").status_code == 404


@pytest.mark.parametrize(("kind", "code", "words"), [("job_capacity", "capacity_exceeded", "capacity"),
                                                     ("job_policy", "content_policy_violation", "content policy")])
def test_given_a_provider_side_failure_when_the_eta_passes_then_both_shapes_give_its_reason(
        client, emulator, clock, kind, code, words):
    emulator.provider("alpha").faults.add("video.submit", kind, times=None)
    generic = client.post("/p/alpha/v1/video/generate", json=GENERIC).json()
    openai = client.post("/p/alpha/v1/videos", json=OPENAI).json()

    clock.advance(60)

    generic_view = client.get(f"/p/alpha/v1/video/generations/{generic['id']}").json()
    openai_view = client.get(f"/p/alpha/v1/videos/{openai['id']}").json()
    assert (generic_view["status"], generic_view["error_code"]) == ("failed", code)
    assert words in generic_view["error"]
    assert (openai_view["status"], openai_view["error"]["code"]) == ("failed", code)
    assert words in openai_view["error"]["message"]
    assert emulator.bill()["items"] == []  # a failed job is never billed


def test_given_an_unknown_provider_name_when_served_then_it_is_refused(emulator):
    with pytest.raises(ValueError, match="lowercase"):
        emulator.add_provider("Not OK")
    with pytest.raises(KeyError, match="alpha"):
        emulator.provider("gamma")


def test_given_a_provider_not_served_when_called_under_its_prefix_then_404(client):
    answer = client.post("/p/gamma/v1/video/generate", json=GENERIC)

    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def test_given_a_reset_when_done_then_every_providers_faults_and_jobs_are_gone(client, emulator):
    emulator.provider("beta").faults.add_spec("video.submit:500")
    job = client.post("/p/alpha/v1/video/generate", json=GENERIC).json()

    emulator.reset()

    assert emulator.provider("beta").faults.list() == []
    assert client.get(f"/p/alpha/v1/video/generations/{job['id']}").status_code == 404
