"""Map-reduce the chunk results into scenes and one video summary.

Map (already done, in parallel): every chunk of frames was described.
Stitch (no provider call): the cuts detected in every segment, merged in
time order, bound the scenes; a segment boundary is not a cut, so a shot that
runs across two segments stays one scene. Each analyzed frame falls in the
scene its timestamp is in.
Reduce: one chat call over the scene lines gives the summary and tags; when
there are more scenes than fit one call, groups are reduced first and their
summaries reduced again (a tree, not a serial refine).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable

from vidpipe.accounting import Accounting
from vidpipe.analysis.ledger import chat_meter
from vidpipe.analysis.models import AnalyzedFrame, AnalyzeSpec, Scene, SummaryAnswer
from vidpipe.providers.chat import ChatClient, text_part
from vidpipe.providers.image_tokens import text_tokens
from vidpipe.timecode import timecode

REDUCE_PROMPT = (
    "Below are the scenes of one video in time order, each with its time range and what was seen. "
    "Write a short paragraph summarizing the whole video (what happens, in order), and give up to "
    "ten short lowercase tags. Use only what the lines say. Answer with JSON only."
)
SCENE_LINE_TOKENS = 80  # a long scene line (three sentences and tags); used for estimates
REDUCE_OUTPUT_TOKENS = 400
REDUCE_BATCH = 80  # scene lines per reduce call; more are reduced in groups first
# Cuts closer than this are one cut reported twice (e.g. by the segments on either side of a boundary).
# The shot detector reports a fade or dissolve once (its midpoint), so only near-identical times merge:
# a 3-frame shot is kept up to 37 fps, a 2-frame one at 25 fps.
MIN_CUT_GAP_S = 0.08
MAX_SCENE_SENTENCES = 3
MAX_SCENE_TERMS = 8


def scene_bounds(cuts: Iterable[float], duration_s: float) -> list[tuple[float, float]]:
    """[start, end) intervals between the cuts, covering the whole video."""
    merged: list[float] = []
    for cut in sorted(c for c in cuts if MIN_CUT_GAP_S <= c <= duration_s - MIN_CUT_GAP_S):
        if not merged or cut - merged[-1] >= MIN_CUT_GAP_S:
            merged.append(cut)
    edges = [0.0, *merged, duration_s]
    return list(zip(edges, edges[1:]))


def build_scenes(frames: list[AnalyzedFrame], cuts: Iterable[float], duration_s: float) -> list[Scene]:
    """Scenes in time order, each with the frames analyzed inside it.

    A scene in which no frame was analyzed (a shot shorter than the sampling
    interval) has nothing to say: its time joins the scene before it (or the
    one after, at the very start).
    """
    bounds = scene_bounds(cuts, duration_s)
    starts = [start for start, _ in bounds]
    groups: list[list[AnalyzedFrame]] = [[] for _ in bounds]
    for frame in sorted(frames, key=lambda f: f.timestamp_s):
        groups[max(0, bisect.bisect_right(starts, frame.timestamp_s) - 1)].append(frame)

    spans: list[list] = []  # [start, end, frames]
    for (start, end), group in zip(bounds, groups):
        if group:
            spans.append([start, end, group])
        elif spans:
            spans[-1][1] = end
    if spans:
        spans[0][0] = 0.0
    return [_scene(i, start, end, group) for i, (start, end, group) in enumerate(spans)]


def _scene(index: int, start: float, end: float, frames: list[AnalyzedFrame]) -> Scene:
    keyframe = min(frames, key=lambda f: abs(f.timestamp_s - (start + end) / 2))
    return Scene(
        index=index, start_s=round(start, 3), end_s=round(end, 3), keyframe_s=round(keyframe.timestamp_s, 3),
        keyframe_key=keyframe.key, description=_describe(frames), frames=len(frames),
        subjects=_common(t for f in frames for t in f.subjects),
        actions=_common(t for f in frames for t in f.actions),
        text_on_screen=list(dict.fromkeys(f.text_on_screen.strip() for f in frames if f.text_on_screen.strip())),
        tags=_common(t.lower() for f in frames for t in f.tags),
    )


def _describe(frames: list[AnalyzedFrame]) -> str:
    """Distinct frame descriptions in time order, at most a few, spread over the scene."""
    distinct = list(dict.fromkeys(f.description.strip() for f in frames if f.description.strip()))
    if len(distinct) > MAX_SCENE_SENTENCES:
        step = (len(distinct) - 1) / (MAX_SCENE_SENTENCES - 1)
        distinct = [distinct[round(i * step)] for i in range(MAX_SCENE_SENTENCES)]
    return " ".join(d if d.endswith((".", "!", "?")) else d + "." for d in distinct)


def _common(terms: Iterable[str]) -> list[str]:
    counts = Counter(t.strip() for t in terms if t.strip())
    return [term for term, _ in counts.most_common(MAX_SCENE_TERMS)]


def clock(seconds: float) -> str:
    """123.4 → '2:03.4'; 3723 → '1:02:03.0' (vidpipe.timecode: the project's one formatter)."""
    return timecode(seconds)


def scene_line(scene: Scene) -> str:
    tags = f" [{', '.join(scene.tags[:5])}]" if scene.tags else ""
    return f"Scene {scene.index + 1} ({clock(scene.start_s)}-{clock(scene.end_s)}): {scene.description}{tags}"


def reduce_cost(scenes: int, overhead_tokens: int) -> tuple[int, int, int]:
    """(calls, input tokens, output tokens) the reduce tree takes for ``scenes`` scene lines,
    each call also paying ``overhead_tokens`` (prompt and schema)."""
    calls = input_tokens = 0
    lines, line_tokens = max(scenes, 1), SCENE_LINE_TOKENS
    while True:
        batches = -(-lines // REDUCE_BATCH)
        calls += batches
        input_tokens += lines * line_tokens + batches * overhead_tokens
        if batches == 1:
            return calls, input_tokens, calls * REDUCE_OUTPUT_TOKENS
        lines, line_tokens = batches, REDUCE_OUTPUT_TOKENS


class Reducer:
    """Runs the reduce calls; every HTTP attempt is metered into the ledger under its
    own client request id (a rerun of the step pays again, and the ledger shows it)."""

    def __init__(self, job_id: str, spec: AnalyzeSpec, chat: ChatClient, accounting: Accounting):
        # [ROUTING] the tier's summary model, when it differs from the analysis model
        spec = spec.using(spec.summary_model) if spec.summary_model else spec
        self.job_id, self.spec, self.chat, self.accounting = job_id, spec, chat, accounting

    def reduce(self, lines: list[str]) -> SummaryAnswer:
        if len(lines) <= REDUCE_BATCH:
            return self._call(lines)
        parts = []
        for batch, start in enumerate(range(0, len(lines), REDUCE_BATCH)):
            answer = self._call(lines[start:start + REDUCE_BATCH])
            parts.append(f"Part {batch + 1}: {answer.summary} [{', '.join(answer.tags[:5])}]")
        return self.reduce(parts)

    def _call(self, lines: list[str]) -> SummaryAnswer:
        prompt = REDUCE_PROMPT + "\n\n" + "\n".join(lines)
        expected = text_tokens(prompt)
        answer, _ = self.chat.complete_structured(
            self.spec.model, [{"role": "user", "content": [text_part(prompt)]}], SummaryAnswer,
            name="video_summary", max_tokens=REDUCE_OUTPUT_TOKENS,
            meter=chat_meter(self.accounting, self.job_id, "summarize", self.spec, input_tokens=expected,
                             max_tokens=REDUCE_OUTPUT_TOKENS),
            on_attempt=lambda _attempt: self.accounting.acquire(self.spec.provider,
                                                                expected + REDUCE_OUTPUT_TOKENS),
        )
        return answer
