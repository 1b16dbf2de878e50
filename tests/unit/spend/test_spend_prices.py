import json
from decimal import Decimal

import pytest

from vidpipe.config import Settings
from vidpipe.spend.prices import PriceConfigError, PriceTable


@pytest.fixture
def prices() -> PriceTable:
    return PriceTable.packaged()


def test_given_the_default_settings_when_their_models_are_priced_then_every_default_has_a_price(prices):
    settings = Settings()

    for model in (settings.chat_model, settings.enhance_model):
        assert prices.chat_cost(model, 1_000, 1_000) > 0
    assert prices.video_cost(settings.video_model, 1, None, None) > 0


def test_given_token_counts_when_chat_cost_then_input_and_output_are_priced_per_million(prices):
    assert prices.chat_cost("gpt-4.1", 1_000_000, 1_000_000) == Decimal("10")
    assert prices.chat_cost("claude-sonnet-4.5", 1_000, 2_000) == Decimal("0.033")
    assert prices.chat_cost("gemini-2.5-flash", 2_580, 400) == Decimal("0.001774")


def test_given_a_fraction_of_a_micro_dollar_when_chat_cost_then_it_rounds_half_up_to_the_micro_dollar(prices):
    assert prices.chat_cost("deepseek-v3.2", 1, 0) == Decimal("0.000000")  # 0.28 µ$
    assert prices.chat_cost("deepseek-v3.2", 2, 0) == Decimal("0.000001")  # 0.56 µ$
    assert prices.chat_cost("deepseek-v3.2", 7, 11).as_tuple().exponent == -6


def test_given_a_clip_when_video_cost_then_the_resolution_and_fps_override_or_default_applies(prices):
    assert prices.video_cost("sora-2", 8, "720x1280", 30) == Decimal("0.8")
    assert prices.video_cost("vidgen-1", 4, "1280x720", 24) == Decimal("0.2")  # default
    assert prices.video_cost("vidgen-1", 4, "1920x1080", 24) == Decimal("0.4")  # resolution override
    assert prices.video_cost("vidgen-1", 4, "1080x1920", 60) == Decimal("0.8")  # resolution@fps, portrait
    assert prices.video_cost("luma.ray-v2:0", 5, "960x540", 24) == Decimal("3.75")
    assert prices.video_cost("amazon.nova-reel-v1:1", 6.5, "1280x720", 24) == Decimal("0.52")


def test_given_a_clip_of_unknown_resolution_when_costed_then_the_dearest_rate_applies(prices):
    assert prices.video_cost("vidgen-1", 4) == Decimal("0.8")
    assert prices.video_cost("luma.ray-v2:0", 2) == Decimal("3")
    assert prices.video_cost("sora-2", 2) == Decimal("0.2")


def test_given_an_unknown_model_when_costed_then_it_fails_instead_of_costing_zero(prices):
    with pytest.raises(PriceConfigError, match="gpt-5"):
        prices.chat_cost("gpt-5", 10, 10)
    with pytest.raises(PriceConfigError, match="veo-9"):
        prices.video_cost("veo-9", 4, "1280x720", 24)


@pytest.mark.parametrize("setting", [{"chat_model": "gemini-2.5-flsh"}, {"enhance_model": "gpt4.1"},
                                     {"video_model": "sora-3"}])
def test_given_a_configured_model_without_a_price_when_loaded_then_configuration_fails(setting):
    with pytest.raises(PriceConfigError, match=next(iter(setting.values()))):
        PriceTable.load(Settings(**setting))


def test_given_an_override_when_loaded_then_it_adds_and_replaces_models_and_keeps_the_rest():
    override = {"chat": {"my-gateway/flash": {"input_per_mtok": "0.1", "output_per_mtok": "0.4"},
                         "gpt-4.1": {"input_per_mtok": "1", "output_per_mtok": "4", "daily_budget_usd": "5"}}}
    table = PriceTable.load(Settings(chat_model="my-gateway/flash", price_table_json=json.dumps(override)))
    assert table.chat_cost("my-gateway/flash", 1_000_000, 0) == Decimal("0.1")
    assert table.chat_cost("gpt-4.1", 0, 1_000_000) == Decimal("4")
    assert table.chat_cost("claude-sonnet-4.5", 0, 1_000_000) == Decimal("15")
    assert table.model_daily_budgets() == {"gpt-4.1": Decimal("5")}


def test_given_an_override_file_path_when_loaded_then_the_file_is_read(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"video": {"veo-3": {"default_per_second": "0.4"}}}))
    table = PriceTable.load(Settings(video_model="veo-3", price_table_json=str(path)))
    assert table.video_cost("veo-3", 8, "1280x720", 24) == Decimal("3.2")


@pytest.mark.parametrize("override", ['{"chat": {"m": {"input_per_mtok": "-1", "output_per_mtok": "1"}}}',
                                      '{"chat": {"m": {"input_per_mtok": "1"}}}',
                                      '{"video": {"v": {"default_per_second": "1", "per_second": {"hd": "2"}}}}',
                                      "{not json", "/no/such/prices.json"])
def test_given_a_malformed_override_when_loaded_then_configuration_fails(override):
    with pytest.raises(PriceConfigError):
        PriceTable.load(Settings(price_table_json=override))
