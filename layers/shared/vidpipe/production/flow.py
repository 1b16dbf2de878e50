"""The production's steps (one function each, see functions/*_production and
statemachines/production.asl.json):

1. ``reserve_storyboard`` then ``run_storyboard``: read the script, reserve the
   storyboard call's estimate (the production job's own reservation), make the
   storyboard (one chat call, metered), store storyboard.json / storyboard.md.
2. ``store_approval_token``: the execution waits on a task token (approval).
3. ``reserve_production``: the (approved or edited) storyboard's shots become
   generation requests; the whole estimate is reserved at once (or refused,
   naming the numbers, before any video call); one job record per shot is
   created (kind "generation", ``parent_reservation_id`` set) before the Map
   starts its child execution, whose name is the shot's job id: derived from
   the production and the shot's content, so a retried item never pays twice.
4. ``collect_shots``: read the shots' job records into AssembleEpisode's event
   and decide: on_shot_failure "fail" with a failed shot, or no shot at all
   succeeded → the production fails.
5. ``finalize_production``: settle (the storyboard reservation, then release
   what the shots did not take of the production reservation), record the
   terminal status (SUCCEEDED, PARTIAL with gaps, FAILED) and announce it.

Money: the storyboard call is the production job's own ledger entry; each
shot's calls are its own job's entries, paid from the amount it moved out of
the production reservation (spend/budgets.py ``reserve_from``).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from vidpipe.errors import BudgetExceeded, InputRejected
from vidpipe.generation.messages import SCRIPTS_PREFIX, GenerateJob, ProduceJob, canonical_json
from vidpipe.jobs import JobStatus, now_iso, stable_id
from vidpipe.production.storyboard import Storyboard, make_storyboard, markdown, shot_prompt, storyboard_tokens
from vidpipe.providers.video import billed_seconds
from vidpipe.runtime import Deps
from vidpipe.spend.prices import PriceTable, quantize_usd

PREFIX = "productions"
TOKEN_SK = "TOKEN"


def production_key(job_id: str, name: str) -> str:
    return f"{PREFIX}/{job_id}/{name}"


def shots_reservation_id(job_id: str) -> str:
    """The production's reservation for its shots (the job's own one holds the storyboard call)."""
    return stable_id("rsv", job_id, "shots")


def storyboard_model(job: ProduceJob, settings) -> str:
    try:  # ROUTING's table, when it is there
        from vidpipe.routing import chat_model
    except ImportError:
        return settings.enhance_model
    return chat_model(getattr(job, "tier", None), "storyboard", settings)


# ---------------------------------------------------------------- 1. storyboard
def read_script(job: ProduceJob, deps: Deps) -> str:
    where = job.script_uri
    if where is None:
        return job.script
    bucket, key = where
    media = deps.settings.media_bucket
    if bucket != media or not key.startswith(SCRIPTS_PREFIX):
        raise InputRejected(f"script: s3://{bucket}/{key} is not under s3://{media}/{SCRIPTS_PREFIX}")
    try:
        body = deps.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{4 * 20_000}")["Body"].read()
    except deps.s3.exceptions.NoSuchKey:
        raise InputRejected(f"script: s3://{bucket}/{key} does not exist") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputRejected(f"script: s3://{bucket}/{key} is not UTF-8 text") from None
    if key.endswith(".json"):  # a produce message dropped as a file: its script field
        try:
            text = json.loads(text).get("script", "")
        except (ValueError, AttributeError):
            raise InputRejected(f"script: s3://{bucket}/{key} is not a JSON produce message") from None
    if not text.strip():
        raise InputRejected(f"script: s3://{bucket}/{key} is empty")
    if len(text) > 20_000:
        raise InputRejected(f"script: s3://{bucket}/{key} has more than 20000 characters")
    return text


def reserve_storyboard(job_id: str, job: ProduceJob, deps: Deps) -> dict:
    """Before the storyboard call: its estimate (the script's tokens and a full answer) reserved
    as the production job's own reservation, or refused (BudgetExceeded) naming the numbers."""
    script = read_script(job, deps)
    model = storyboard_model(job, deps.settings)
    prices = PriceTable.load(deps.settings)
    estimate = prices.chat_cost(model, *storyboard_tokens(job, script))
    if job.max_cost_usd is not None and estimate > job.max_cost_usd:
        raise BudgetExceeded(f"the storyboard call's estimate {estimate} USD is above max_cost_usd "
                             f"{job.max_cost_usd} USD")
    reservation_id = deps.accounting.reserve(job_id, estimate, model)
    return {"reservation_id": reservation_id, "estimate_usd": str(estimate), "model": model}


def run_storyboard(job_id: str, job: ProduceJob, deps: Deps, chat, model: str) -> dict:
    """The storyboard call (reserved by ``reserve_storyboard``), stored as storyboard.json / .md.
    Writes no job record and moves no reservation (it handles model output): the call's
    ledger entry is its only write to the table."""
    script = read_script(job, deps)
    board = make_storyboard(job_id, job, script, chat, deps.accounting, model)
    totals = deps.accounting.settle(job_id, None)  # leftover intents only: the ledger's figures
    store_storyboard(job_id, board, deps)
    return {"storyboard": board.model_dump(mode="json"), "storyboard_usd": str(totals.get("cost_usd", 0)),
            "outputs": {"storyboard": _uri(deps, job_id, "storyboard.json"),
                        "storyboard_md": _uri(deps, job_id, "storyboard.md")}}


def store_storyboard(job_id: str, board: Storyboard, deps: Deps) -> None:
    bucket = deps.settings.media_bucket
    deps.s3.put_object(Bucket=bucket, Key=production_key(job_id, "storyboard.json"),
                       Body=board.model_dump_json(indent=2).encode(), ContentType="application/json")
    deps.s3.put_object(Bucket=bucket, Key=production_key(job_id, "storyboard.md"),
                       Body=markdown(board, job_id).encode(), ContentType="text/markdown")


def _uri(deps: Deps, job_id: str, name: str) -> str:
    return f"s3://{deps.settings.media_bucket}/{production_key(job_id, name)}"


# ---------------------------------------------------------------- 2. approval
def store_approval_token(job_id: str, token: str, deps: Deps, timeout_s: int) -> dict:
    """Keep the task token where `vidpipe approve` / `reject` find it (pk=JOB#<id>, sk=TOKEN)."""
    from vidpipe.jobs import to_item

    deps.jobs.ddb.put_item(TableName=deps.jobs.table, Item={
        "pk": {"S": f"JOB#{job_id}"}, "sk": {"S": TOKEN_SK},
        **to_item({"job_id": job_id, "token": token, "stored_at": now_iso(), "timeout_s": timeout_s})})
    deps.jobs.update(job_id, approval={"state": "WAITING", "since": now_iso(), "timeout_s": timeout_s})
    return {"waiting": True}


# ---------------------------------------------------------------- 3. reserve + shot jobs
class ShotPlan(BaseModel):
    index: int
    job_id: str
    request: dict
    estimate_usd: Decimal


def shot_requests(job_id: str, job: ProduceJob, board: Storyboard, settings) -> list[ShotPlan]:
    characters = {c.name: c for c in job.characters}
    accepts_image = "reference_image" in GenerateJob.model_fields
    prices = PriceTable.load(settings)
    plans = []
    for shot in board.shots:
        request: dict[str, Any] = {"type": "generate", "prompt": shot_prompt(shot, board, job), "mode": shot.mode,
                                   "duration_s": shot.duration_s, "fps": job.fps, "resolution": job.resolution,
                                   "physics": shot.physics.set_values()}
        image = next((characters[n].reference_image for n in shot.characters if characters[n].reference_image), None)
        if image and accepts_image:
            request["reference_image"] = image
        try:
            valid = GenerateJob.model_validate(request, context={"settings": settings})
        except ValueError as exc:
            raise InputRejected(f"shot {shot.index + 1} is not a valid generation: {exc}") from None
        provider = getattr(valid, "provider", None) or settings.video_provider
        model = getattr(valid, "model", None) or settings.video_model
        seconds = billed_seconds(provider, model, valid.duration_s)
        estimate = prices.video_cost(model, seconds, valid.resolution, valid.fps)
        normalized = valid.model_dump(mode="json")
        shot_id = stable_id("shot", job_id, str(shot.index), canonical_json(valid), length=40)
        plans.append(ShotPlan(index=shot.index, job_id=shot_id, request=normalized, estimate_usd=estimate))
    return plans


def reserve_production(job_id: str, job: ProduceJob, board: Storyboard, deps: Deps, storyboard_usd: Decimal,
                       ttl_s: int, edited: bool = False) -> dict:
    plans = shot_requests(job_id, job, board, deps.settings)
    estimate = quantize_usd(sum((p.estimate_usd for p in plans), Decimal(0)))
    model = deps.settings.video_model
    numbers = f"{len(plans)} shots, {board.total_s:g} s of video: estimate {estimate} USD"
    if job.max_cost_usd is not None and storyboard_usd + estimate > job.max_cost_usd:
        raise BudgetExceeded(f"production refused before any video call: {numbers} + storyboard {storyboard_usd} "
                             f"USD > max_cost_usd {job.max_cost_usd} USD")
    reservation_id = shots_reservation_id(job_id)
    try:
        deps.accounting.reserve_whole(job_id, estimate, model, reservation_id=reservation_id, ttl_s=ttl_s)
    except BudgetExceeded as exc:
        raise BudgetExceeded(f"production refused before any video call: {numbers}; {exc.reason}") from None
    for plan in plans:  # each shot's job exists before its child execution starts
        created = deps.jobs.create(plan.job_id, "generation", plan.request, parent_job_id=job_id,
                                   parent_reservation_id=reservation_id, shot_index=plan.index)
        if not created:
            existing = deps.jobs.get(plan.job_id) or {}
            if existing.get("parent_job_id") != job_id:
                raise InputRejected(f"shot {plan.index + 1}: job {plan.job_id} belongs to another production")
    store_storyboard(job_id, board, deps)  # what is produced (an approver's edit replaces the first)
    deps.jobs.update(job_id, reservation={"reservation_id": reservation_id, "estimate_usd": str(estimate),
                                            "shots": len(plans)}, shots=[p.job_id for p in plans],
                       storyboard={"shots": len(board.shots), "total_s": board.total_s, "clamps": board.clamps,
                                   "storyboard_usd": str(storyboard_usd)},
                     approval={"state": "APPROVED", "edited": edited, "at": now_iso()} if job.approve_storyboard else None)
    deps.jobs.ddb.delete_item(TableName=deps.jobs.table, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": TOKEN_SK}})
    return {"reservation_id": reservation_id, "estimate_usd": str(estimate), "shot_ids": [p.job_id for p in plans],
            "shots": [{"index": p.index, "job_id": p.job_id,
                       "input": {"job_id": p.job_id, "request": p.request, "parent_reservation_id": reservation_id}}
                      for p in plans]}


# ---------------------------------------------------------------- 4. collect
def collect_shots(job_id: str, job: ProduceJob, board: Storyboard, shot_ids: list[str], deps: Deps) -> dict:
    shots, failed = [], []
    for shot, shot_id in zip(board.shots, shot_ids, strict=True):
        record = deps.jobs.get(shot_id) or {}
        status = record.get("status")
        video = (record.get("outputs") or {}).get("video") if status == JobStatus.SUCCEEDED else None
        if isinstance(video, dict):  # StoreVideo's StoredObject
            video = video.get("s3_uri")
        spend = record.get("spend") or {}
        reason = None
        if not video:
            reason = (record.get("error") or {}).get("reason") or f"the shot's job is {status or 'missing'}"
            failed.append(shot.index)
        shots.append({"index": shot.index, "job_id": shot_id, "status": "SUCCEEDED" if video else "FAILED",
                      "video_s3_uri": video, "duration_s": shot.duration_s, "action": shot.action,
                      "cost_usd": None if spend.get("cost_usd") is None else str(spend["cost_usd"]),
                      "reason": reason})
    verdict = "ASSEMBLE"
    why = None
    if len(failed) == len(shots):
        verdict, why = "FAIL", f"every shot failed (shot 1: {shots[0]['reason']})"
    elif failed and job.on_shot_failure == "fail":
        first = shots[failed[0]]
        verdict, why = "FAIL", (f"{len(failed)} of {len(shots)} shots failed and on_shot_failure is fail "
                                f"(shot {first['index'] + 1}: {first['reason']})")
    event = {"job_id": job_id, "title": board.title, "resolution": job.resolution, "fps": job.fps, "shots": shots}
    return {"verdict": verdict, "reason": why, "failed": len(failed), "assemble": event}


# ---------------------------------------------------------------- 5. finalize
def finalize_production(job_id: str, outcome: str, deps: Deps, *, assembled: dict | None = None,
                        collected: dict | None = None, error: dict | None = None) -> dict:
    from vidpipe.finalize import explain

    from vidpipe.accounting import reservation_id_for

    # The storyboard call's reservation (SETTLED, its remainder back), then what the shots did not take.
    totals = deps.accounting.settle(job_id, reservation_id_for(job_id))
    deps.accounting.release(shots_reservation_id(job_id))
    record = deps.jobs.get(job_id) or {}
    shot_ids = record.get("shots") or []
    shots_usd = Decimal(0)
    for shot_id in shot_ids:
        shot = deps.jobs.get(shot_id) or {}
        if shot.get("status") not in ("SUCCEEDED", "FAILED", "REJECTED"):
            # Its child never ran to its finalize (the Map stopped): its reservation goes back.
            deps.accounting.release(reservation_id_for(shot_id))
            deps.jobs.update(shot_id, JobStatus.FAILED, error={"error": "NotRun",
                                                              "reason": "the production ended before this shot ran"})
            continue
        shots_usd += Decimal(str((shot.get("spend") or {}).get("cost_usd", 0)))
    spend = {**totals, "storyboard_usd": totals.get("cost_usd", 0), "shots_usd": shots_usd,
             "cost_usd": Decimal(str(totals.get("cost_usd", 0))) + shots_usd}
    gaps = (assembled or {}).get("gaps") or []
    outputs = (assembled or {}).get("outputs")
    if outcome == "SUCCEEDED":
        status = JobStatus.PARTIAL if gaps else JobStatus.SUCCEEDED
        reason = None
        if gaps:
            reason = f"{len(gaps)} of {len(shot_ids)} shots missing: " + "; ".join(
                f"shot {g['index'] + 1}: {g.get('reason')}" for g in gaps)[:900]
        err = {"error": "ShotsMissing", "reason": reason} if reason else None
    else:
        status = JobStatus.FAILED
        if collected and collected.get("reason"):
            err = {"error": "ShotsFailed", "reason": collected["reason"]}
        else:
            err = explain(error)
    deps.jobs.update(job_id, status, outputs=outputs, spend=spend, error=err,
                     details={"gaps": gaps, "frames": (assembled or {}).get("frames")} if assembled else None)
    deps.jobs.ddb.delete_item(TableName=deps.jobs.table, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": TOKEN_SK}})
    job = deps.jobs.get(job_id) or {}
    _announce(job, deps)
    return {"job_id": job_id, "status": str(status), "error": err, "spend": spend}


def _announce(job: dict, deps: Deps) -> None:
    try:
        from vidpipe.completion import announce
    except ImportError:
        return
    announce(job, deps=deps)
