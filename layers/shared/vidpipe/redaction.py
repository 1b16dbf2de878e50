"""Keep secrets out of everything we write: reasons, logs, job records, errors.

Two layers, applied by ``redact``:

- every registered secret value (the provider keys loaded from Secrets
  Manager, any other value of that secret JSON, a local key from the
  environment) is replaced wherever it appears, also JSON-escaped or
  URL-encoded;
- well-known credential shapes are replaced even when nobody registered
  them, since a provider may echo whatever key it was sent: ``sk-…`` keys,
  ``Bearer …`` tokens, Google ``AIza…`` keys and credential query parameters
  (``?key=``, ``token=``, ``X-Amz-Signature=`` …).

The registry is per process (one Lambda container) and only grows. Values
shorter than ``MIN_SECRET_CHARS`` are not registered: replacing every
occurrence of a 3-character string would mangle ordinary text, and such a
value is no secret.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 6

# Credential shapes redacted whether or not they were registered.
# Lengths are set so that ordinary words are left alone ("the bearer of bad news").
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-*]{10,}"), REDACTED),  # '*': providers echo keys half-masked
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]{12,}"), rf"\1 {REDACTED}"),
    (re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|sig|signature|x-amz-signature|"
                r"x-amz-security-token|x-amz-credential)=)[^&\s\"'#]+"), rf"\1{REDACTED}"),
)

_lock = threading.Lock()
_secrets: set[str] = set()
_by_length: list[str] = []  # longest first, so a secret containing another is replaced whole


def register(*values: Any) -> None:
    """Remember secret values (strings; numbers too) so that ``redact`` hides them."""
    forms = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            continue
        text = str(value).strip()
        if len(text) < MIN_SECRET_CHARS:
            continue
        forms.update({text, json.dumps(text)[1:-1], quote(text, safe="")})
    global _by_length
    with _lock:
        if forms - _secrets:
            _secrets.update(forms)
            _by_length = sorted(_secrets, key=len, reverse=True)


def register_all(secret: Any) -> None:
    """Register every leaf value of a secret (a JSON object, list or a plain string)."""
    register(*_leaves(secret))


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def redact(text: Any) -> Any:
    """``text`` with every registered secret and credential shape replaced; non-strings unchanged."""
    if not isinstance(text, str) or not text:
        return text
    for secret in _by_length:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any, _depth: int = 0) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every string redacted, keys included."""
    if _depth > 50:  # deeper than anything we log or store: give up on it rather than recurse forever
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(k) if isinstance(k, str) else k: redact_value(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, _depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v, _depth + 1) for v in value)
    return value


def redact_exception(exc: BaseException) -> BaseException:
    """Redact an exception in place, and the ones it chains to, keeping its class.

    Lambda reports ``errorMessage = str(exc)`` and Step Functions copies it into the
    execution history, so the exception itself must not carry the secret. The class
    is kept because Retry/Catch match on its name.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(redact_value(a) for a in current.args)
        for attribute in ("reason", "msg", "message"):  # where common exceptions keep their text
            value = getattr(current, "__dict__", {}).get(attribute)
            if isinstance(value, str):
                current.__dict__[attribute] = redact(value)
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list):
            current.__notes__ = [redact(n) for n in notes]
        current = current.__cause__ or current.__context__
    return exc


def clear() -> None:
    """Forget every registered value (tests only)."""
    global _by_length
    with _lock:
        _secrets.clear()
        _by_length = []
