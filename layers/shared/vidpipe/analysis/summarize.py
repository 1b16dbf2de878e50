"""Map-reduce the chunk results into scenes and one video summary.

Map (already done, in parallel): every chunk of frames was described.
Stitch (no provider call): the cuts detected in every segment, merged in
time order, bound the scenes; a segment boundary is not a cut, so a shot that
runs across two segments stays one scene. Each analyzed frame falls in the
scene its timestamp is in.
Reduce: one chat call over the scene lines gives the summary and tags; when
there are more scenes than fit one call, groups are reduced first and their
summaries reduced again (a tree, not a serial refine). The groups of one level
are independent: their calls run side by side (at most REDUCE_WORKERS at once),
and their summaries are combined in group order, whatever order they finish in.
"""

from __future__ import annotations

import bisect
import contextvars
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

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
# Group reduces in flight at once. Each still takes its slot from the shared rate bucket and keeps
# to the step's deadline; the one-hour video has 3 groups.
REDUCE_WORKERS = 4
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
    own client request id (a rerun of the step pays again, and the ledger shows it).

    The group calls of one level run on a small thread pool. What they share is
    safe to share across threads: the ChatClient (its httpx.Client is thread-safe,
    and each call keeps its own state), the accounting (boto3 clients, no
    resources; the ledger, budget and rate-bucket writes are conditional, as
    concurrent Lambdas already make them). Each call runs in a copy of the
    caller's context, so ``vidpipe.deadline.current()`` is the step's deadline in
    the pool as on the handler's thread: the rate limiter's waits and every HTTP
    attempt are cut to it, and a call that does not fit hands back
    (ProviderRetryable / RateLimited) exactly as it would one after the other.

    When a group call fails, the other groups make no further attempt (a group
    not yet started sends nothing; one under way stops before its next retry, so
    nothing more is billed once the step is known to fail). The attempts already
    sent run to their end and are metered; then the error of the first failed
    group, in group order, is raised, as the sequential reduce raised it.
    """

    def __init__(self, job_id: str, spec: AnalyzeSpec, chat: ChatClient, accounting: Accounting,
                 workers: int = REDUCE_WORKERS):
        # [ROUTING] the tier's summary model, when it differs from the analysis model
        spec = spec.using(spec.summary_model) if spec.summary_model else spec
        self.job_id, self.spec, self.chat, self.accounting = job_id, spec, chat, accounting
        self.workers = max(1, workers)

    def reduce(self, lines: list[str]) -> SummaryAnswer:
        if len(lines) <= REDUCE_BATCH:
            return self._call(lines)
        groups = [lines[start:start + REDUCE_BATCH] for start in range(0, len(lines), REDUCE_BATCH)]
        answers = self._reduce_groups(groups)
        return self.reduce([f"Part {batch + 1}: {answer.summary} [{', '.join(answer.tags[:5])}]"
                            for batch, answer in enumerate(answers)])

    def _reduce_groups(self, groups: list[list[str]]) -> list[SummaryAnswer]:
        """Each group's answer, in group order; the calls run side by side (class docstring)."""
        failed = threading.Event()

        def reduce_group(lines: list[str]) -> SummaryAnswer:
            try:
                return self._call(lines, stopped=failed.is_set)
            except BaseException:
                failed.set()  # the other groups make no further attempt
                raise

        with ThreadPoolExecutor(max_workers=min(self.workers, len(groups)),
                                thread_name_prefix="vidpipe-reduce") as pool:
            # A copy of the context per call (the step's deadline; a Context is entered by one thread at a time).
            futures = [pool.submit(contextvars.copy_context().run, reduce_group, lines) for lines in groups]
        # Leaving the pool waited for every call: every attempt made is metered by now.
        for future in futures:
            error = future.exception()
            if error is not None and not isinstance(error, _Stopped):
                raise error
        return [future.result() for future in futures]

    def _call(self, lines: list[str], stopped: Callable[[], bool] = lambda: False) -> SummaryAnswer:
        prompt = REDUCE_PROMPT + "\n\n" + "\n".join(lines)
        expected = text_tokens(prompt)

        def before_attempt(_attempt: int) -> None:
            # Before each HTTP attempt (and before its intent is opened): a slot from the shared
            # rate bucket, unless a sibling group has failed the step meanwhile.
            if stopped():
                raise _Stopped()
            self.accounting.acquire(self.spec.provider, expected + REDUCE_OUTPUT_TOKENS)
            if stopped():
                raise _Stopped()

        answer, _ = self.chat.complete_structured(
            self.spec.model, [{"role": "user", "content": [text_part(prompt)]}], SummaryAnswer,
            name="video_summary", max_tokens=REDUCE_OUTPUT_TOKENS,
            meter=chat_meter(self.accounting, self.job_id, "summarize", self.spec, input_tokens=expected,
                             max_tokens=REDUCE_OUTPUT_TOKENS),
            on_attempt=before_attempt,
        )
        return answer


class _Stopped(Exception):
    """A group call given up before an attempt because another group's call failed the step."""
