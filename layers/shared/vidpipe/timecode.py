"""The one way vidpipe writes a time within a video: reports, prompts, captions."""

from __future__ import annotations


def timecode(seconds: float) -> str:
    """``59.96`` → ``'1:00.0'``; ``123.4`` → ``'2:03.4'``; ``3723`` → ``'1:02:03.0'``.

    Rounded to tenths first, so a time never shows 60 seconds."""
    tenths = round(max(0.0, seconds) * 10)
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    secs = f"{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{minutes:02d}:{secs}" if hours else f"{minutes}:{secs}"


def timecode_ms(seconds: float) -> str:
    """``62.5`` → ``'00:01:02.500'``: hours, minutes, seconds and milliseconds, always all four
    (an episode's shot list and contact sheet, where times line up in a column)."""
    millis = round(max(0.0, seconds) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"
