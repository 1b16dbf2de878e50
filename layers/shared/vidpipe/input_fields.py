"""Field types and the one error formatter shared by every intake model
(job messages on the jobs queue, analysis options in upload metadata).

The types make a value that validates one that can succeed: numbers are
numbers (``true`` is not 1), money is finite, capped and at least the ledger's
smallest unit after rounding, text has no control characters. The formatter
turns pydantic errors into one readable line each, never quoting more than
``QUOTE_CHARS`` of what the sender wrote.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from vidpipe.config import Settings

MONEY_QUANTUM = Decimal("0.0001")  # the ledger's unit
MAX_MONEY_USD = 1_000_000  # USD; no job or budget option is larger (bigger is a typo, or an overflow)
QUOTE_CHARS = 200  # at most this much of the sender's input is quoted back
RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})
ALLOWED_CONTROLS = frozenset("\t\n")  # a multi-line prompt is fine; other control characters are not


def quoted(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of what the sender wrote, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("number_not_bool", "must be a number, not {value}",
                                  {"value": "true" if value else "false"})
    return value


def _money(value: Decimal) -> Decimal:
    # "2.5" and "2.50" are the same amount, and must hash to the same execution name.
    try:
        rounded = value.quantize(MONEY_QUANTUM)
    except InvalidOperation:  # unreachable below MAX_MONEY_USD; kept so no decimal error escapes pydantic
        raise ValueError(f"{quoted(str(value))} is not an amount in USD") from None
    if rounded < MONEY_QUANTUM:
        raise ValueError(f"{value} USD rounds to {rounded}; the smallest amount is {MONEY_QUANTUM}")
    return rounded


def _plain_text(value: str) -> str:
    for position, char in enumerate(value):
        if unicodedata.category(char) == "Cc" and char not in ALLOWED_CONTROLS:
            raise ValueError(f"control character U+{ord(char):04X} at position {position} is not allowed")
    return value


NotBool = BeforeValidator(_not_bool)
Money = Annotated[Decimal, NotBool, Field(gt=0, le=MAX_MONEY_USD, allow_inf_nan=False), AfterValidator(_money)]
PlainText = AfterValidator(_plain_text)


def priced_model(model: str, kind: Literal["chat", "video"], settings: Settings) -> str:
    """A model the price table knows: an unpriced one could not be budgeted, so the
    job is refused at intake rather than failing after it was queued."""
    from vidpipe.spend.prices import PriceTable

    prices = PriceTable.load(settings)
    known = prices.video if kind == "video" else prices.chat
    if model not in known:
        raise ValueError(f"no price for {kind} model {quoted(model)}, so its cost cannot be capped; "
                         f"priced: {', '.join(sorted(known))}")
    return model


def readable_error(error: dict, loc: tuple | None = None, subject: str = "message body") -> str:
    """One line for one pydantic error: ``field: problem``. ``loc`` overrides the
    error's own location (a caller drops a union's tag from it, or adds a prefix);
    ``subject`` names the whole input in errors about its shape."""
    kind = error["type"]
    loc = error["loc"] if loc is None else loc
    if kind == "json_invalid":
        return f"{subject} is not valid JSON ({error['msg'].removeprefix('Invalid JSON: ')})"
    field = ".".join(str(part) for part in loc)
    if len(field) > QUOTE_CHARS:
        field = quoted(field)
    if kind in ("model_attributes_type", "model_type", "dict_type"):
        return f"{field}: must be a JSON object" if field else f"{subject} must be a JSON object"
    message = error["msg"].removeprefix("Value error, ")
    if not field:
        return message
    if kind == "extra_forbidden":
        return f"{field}: unknown field"
    if kind == "missing":
        return f"{field}: required"
    return f"{field}: {message}"
