"""The `make sam-local` checker (scripts/sam_local/invoke_all.py).

`sam local invoke` exits 0 when the handler raised, so the step rests on reading
the printed result; these tests feed it what SAM prints for a raising handler.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from vidpipe_local.stack.resources import name_resources
from vidpipe_local.stack.template import Resolver, load_template

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"

_spec = importlib.util.spec_from_file_location("sam_local_invoke_all", REPO / "scripts/sam_local/invoke_all.py")
invoke_all = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = invoke_all  # dataclasses look their module up there
_spec.loader.exec_module(invoke_all)

# What `sam local invoke` prints on stdout when the handler raised (its exit code is still 0).
RAISED = json.dumps({
    "errorMessage": "the upload s3://bucket/uploads/no-such-clip.mp4 no longer exists",
    "errorType": "InputRejected",
    "requestId": "0c2d7b8e-1f5a-4c1e-9d1b-000000000000",
    "stackTrace": ["  File \"/var/task/app.py\", line 12, in handler\n"],
})


def test_given_a_handler_that_raised_when_checked_then_it_fails_naming_the_error():
    verdict = invoke_all.check_result(RAISED, returncode=0)

    assert not verdict.ok
    assert "InputRejected" in verdict.detail and "no-such-clip" in verdict.detail


def test_given_an_event_meant_to_raise_when_the_handler_raised_that_error_then_it_passes():
    assert invoke_all.check_result(RAISED, returncode=0, expected_error="InputRejected").ok


def test_given_an_event_meant_to_raise_when_another_error_or_a_result_comes_back_then_it_fails():
    assert not invoke_all.check_result(RAISED, returncode=0, expected_error="JobNotRunning").ok
    assert not invoke_all.check_result('{"job_id": "j"}', returncode=0, expected_error="JobNotRunning").ok


def test_given_a_result_after_other_output_when_checked_then_the_last_json_line_is_read():
    assert invoke_all.check_result('warming up\n{"batchItemFailures": []}', returncode=0).ok
    assert not invoke_all.check_result("warming up\n" + RAISED, returncode=0).ok


@pytest.mark.parametrize("stdout, code", [("", 0), ("not json at all", 0), ('{"ok": true}', 1)])
def test_given_no_result_or_a_failed_sam_when_checked_then_it_fails(stdout, code):
    assert not invoke_all.check_result(stdout, returncode=code).ok


def test_given_one_function_raising_in_its_container_when_all_run_then_it_is_not_counted(tmp_path):
    for name in ("probe_video", "start_jobs_messages", "start_jobs_upload"):
        (tmp_path / f"{name}.json").write_text("{}")
    printed = {"probe_video.json": '{"duration_s": 20.0}', "start_jobs_messages.json": '{"batchItemFailures": []}',
               "start_jobs_upload.json": RAISED}
    lines = []

    ran = invoke_all.run_all(["StartJobsFunction", "ProbeVideoFunction", "FinalizeJobFunction"], tmp_path,
                             lambda fn, event: (printed[event.name], "", 0), lines.append)

    assert ran == 1  # StartJobs raised on one of its two events; FinalizeJob has no event file
    assert any(line.startswith("  FAIL StartJobsFunction -e events/start_jobs_upload.json") for line in lines)
    assert any("FinalizeJobFunction: no event file" in line for line in lines)


def test_given_the_template_then_every_function_has_an_event_file():
    functions = invoke_all.functions_in(REPO / "template.yaml")

    assert [f for f in functions if not invoke_all.events_for(f, EVENTS)] == []
    assert [p.name for p in invoke_all.events_for("StartJobsFunction", EVENTS)] == [
        "start_jobs_messages.json", "start_jobs_upload.json"]


def test_given_the_local_stack_names_then_the_events_name_its_bucket_literally():
    template = load_template(REPO / "template.yaml")
    defaults = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    resolver = Resolver(stack_name="vidpipe-local", parameters=defaults)
    name_resources(template, resolver)
    bucket = resolver.refs["MediaBucket"]

    for name in ("probe_video", "extract_frames", "summarize_report"):
        assert json.loads((EVENTS / f"{name}.json").read_text())["bucket"] == bucket
    upload = json.loads(json.loads((EVENTS / "start_jobs_upload.json").read_text())["Records"][0]["body"])
    assert upload["Records"][0]["s3"]["bucket"]["name"] == bucket
    assert "{{" not in "".join(p.read_text() for p in EVENTS.glob("*.json"))
