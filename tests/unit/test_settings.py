"""Settings fail at cold start on a missing or out-of-bounds variable, naming it."""

import pytest

from vidpipe.config import LAMBDA_MARKER, Settings, SettingsError

GLOBALS = {"TABLE_NAME": "stack-JobsTable-1", "ALARM_TOPIC_ARN": "arn:aws:sns:us-east-1:123:alarms"}


@pytest.fixture
def env(monkeypatch):
    """A clean environment (no variable a developer exported leaks in); returns a setter."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv(LAMBDA_MARKER, raising=False)

    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


@pytest.mark.parametrize("name, value", [
    ("SEGMENT_SECONDS", "0"),  # plan.py would cut segments forever
    ("SEGMENT_SECONDS", "inf"),
    ("FRAMES_PER_CHUNK", "0"),
    ("DEFAULT_FPS", "0"),
    ("DEFAULT_FPS", "nan"),
    ("DEFAULT_SAMPLING", "smart"),
    ("MAX_FRAMES_PER_SEGMENT", "0"),
    ("MAX_VIDEO_BYTES", "-1"),
    ("MAX_DURATION_S", "0"),
    ("POLL_MAX_ATTEMPTS", "0"),
    ("POLL_MIN_WAIT_S", "0"),
    ("POLL_DEADLINE_S", "-5"),
    ("BUDGET_DAILY_USD", "-1"),
    ("BUDGET_MONTHLY_USD", "NaN"),
    ("RESERVATION_TTL_S", "0"),
    ("RATE_LIMIT_RPM", "0"),
    ("RATE_LIMIT_TPM", "-10"),
    ("CHAT_MAX_ATTEMPTS", "0"),
    ("CHAT_TIMEOUT_S", "0"),
    ("VIDEO_PROVIDER", "sora"),
    ("CHAT_BASE_URL", "api.example.com/v1"),
    ("SEGMENT_SECONDS", "sixty"),
])
def test_given_an_out_of_bounds_variable_when_settings_load_then_they_fail_naming_it(env, name, value):
    env(**{name: value})

    with pytest.raises(SettingsError) as raised:
        Settings()

    assert raised.value.reason.startswith(f"configuration: {name}={value}: ")
    assert raised.value.reason.count(";") == 0  # that variable, and only that one


def test_given_several_bad_variables_when_settings_load_then_each_is_named(env):
    env(SEGMENT_SECONDS="0", RATE_LIMIT_RPM="0")

    with pytest.raises(SettingsError, match="SEGMENT_SECONDS=0: .*; RATE_LIMIT_RPM=0: "):
        Settings()


def test_given_a_longest_poll_wait_below_the_shortest_when_settings_load_then_both_are_named(env):
    env(POLL_MIN_WAIT_S="30", POLL_MAX_WAIT_S="10")

    with pytest.raises(SettingsError, match="POLL_MAX_WAIT_S=10 is below POLL_MIN_WAIT_S=30"):
        Settings()


@pytest.mark.parametrize("missing", sorted(GLOBALS))
def test_given_a_lambda_without_a_variable_globals_give_every_function_when_settings_load_then_it_is_named(
        env, missing):
    env(**{LAMBDA_MARKER: "stack-ProbeVideoFunction-1"}, **{k: v for k, v in GLOBALS.items() if k != missing})

    with pytest.raises(SettingsError) as raised:
        Settings()

    assert raised.value.reason == f"configuration: {missing} is not set"


def test_given_a_lambda_with_its_environment_when_settings_load_then_they_hold_it(env):
    env(**{LAMBDA_MARKER: "stack-ExtractFramesFunction-1"}, **GLOBALS, MEDIA_BUCKET="stack-media-123")

    settings = Settings().require("media_bucket")

    assert (settings.table_name, settings.media_bucket) == ("stack-JobsTable-1", "stack-media-123")


def test_given_no_resource_variables_outside_lambda_then_no_name_is_made_up(env):
    settings = Settings()

    assert (settings.table_name, settings.media_bucket, settings.idempotency_table_name) == ("", "", "")


def test_given_a_function_that_needs_a_variable_it_lacks_when_required_then_the_variable_is_named(env):
    env(**{LAMBDA_MARKER: "stack-ExtractFramesFunction-1"}, **GLOBALS)

    with pytest.raises(SettingsError, match="^configuration: MEDIA_BUCKET is not set; "
                                            "ANALYSIS_STATE_MACHINE_ARN is not set$"):
        Settings().require("media_bucket", "table_name", "analysis_state_machine_arn")


def test_given_the_defaults_then_they_are_within_every_bound(env):
    settings = Settings()

    assert settings.segment_seconds == 60.0 and settings.frames_per_chunk == 8
