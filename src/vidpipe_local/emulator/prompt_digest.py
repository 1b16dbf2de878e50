"""Text answers for calls without images (summaries, reductions, prompt
enhancement): the prompt's most frequent key words, plus every ``sig:`` the
prompt carries, so a summary stays traceable to the frames behind it."""

from __future__ import annotations

import re
from collections import Counter

_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_SIG = re.compile(r"sig:[0-9a-f]{16}")
_STOPWORDS = frozenset(
    """the and for are was its not but you all any can has had one two out who how why our per use
    about above after again against also among another because been before being below between both
    could does doing down during each either every from further have having here into itself just like
    made make many more most mostly much must only other over same should some such than that their them
    then there these they this those through under until very what when where which while will with within
    without would your frame frames image images json return respond answer describe given following""".split()
)


def key_phrases(text: str, limit: int = 8) -> list[str]:
    words = [w.strip("'-") for w in _WORD.findall(_SIG.sub(" ", text.lower()))]
    counts = Counter(w for w in words if len(w) > 2 and w not in _STOPWORDS)
    first_seen = {w: i for i, w in reversed(list(enumerate(words)))}
    return sorted(counts, key=lambda w: (-counts[w], first_seen[w]))[:limit]


def signatures(text: str) -> list[str]:
    return list(dict.fromkeys(_SIG.findall(text)))


def digest(text: str) -> str:
    phrases = key_phrases(text)
    summary = ", ".join(phrases) if phrases else "nothing to summarize"
    sigs = signatures(text)
    return f"{summary} ({' '.join(sigs)})" if sigs else summary


def mentions(text: str, value: str) -> bool:
    """Whether ``text`` names ``value`` as words ("slow_motion" matches
    "slow motion", "slow-motion" and "slowmotion"; "low" does not match "slow")."""
    parts = re.split(r"[_\-\s]+", value.lower().strip())
    if not any(parts):
        return False
    return re.search(r"\b" + r"[\s_-]?".join(map(re.escape, parts)) + r"\b", text.lower()) is not None
