"""report.html: the analysis report as one self-contained page.

Everything is inside the file: styles inline, every picture a data: URI, no
script, no font or image fetched from anywhere, so it opens offline, from an
e-mail attachment or from S3 as it is. Sections: a note when the provider
emulator produced the answers, a note per usage anomaly, the summary, a
timeline strip of the shots (thumbnail and time code, each as wide as the shot
is long), then each shot's description, subjects, actions and on-screen text,
and the spend.
"""

from __future__ import annotations

import base64
from html import escape

from vidpipe.timecode import timecode

MIN_STRIP_SHARE = 0.04  # a very short shot still gets a visible tile in the strip

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f6f4;color:#1d1d1b}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.meta{color:#555;margin:0 0 14px}
.note{border-radius:6px;padding:10px 14px;margin:10px 0;font-weight:600}
.note.emulator{background:#fff3c4;border:1px solid #e0b800}
.note.anomaly{background:#fde2e1;border:1px solid #d9534f}
.tags span{display:inline-block;background:#e4e7ec;border-radius:10px;padding:1px 9px;margin:2px 4px 2px 0;font-size:13px}
.strip{display:flex;gap:3px;overflow-x:auto;padding:6px;background:#1d1d1b;border-radius:6px}
.strip a{display:block;min-width:64px;color:#eee;text-decoration:none;font-size:12px}
.strip img{display:block;width:100%;height:72px;object-fit:cover;border-radius:3px}
.strip span{display:block;padding:2px 1px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.shot{display:flex;gap:16px;background:#fff;border-radius:6px;padding:12px;margin:10px 0;box-shadow:0 1px 2px #0002}
.shot img{width:240px;height:auto;align-self:flex-start;border-radius:4px}
.shot h3{margin:0 0 6px;font-size:15px}.shot dl{margin:6px 0 0;display:grid;grid-template-columns:auto 1fr;gap:2px 10px}
.shot dt{color:#666}.shot dd{margin:0}
table{border-collapse:collapse;background:#fff}td,th{padding:4px 12px;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
"""


def data_uri(image: bytes) -> str:
    mime = "image/png" if image[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(image).decode()}"


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 scene``, ``2 scenes``."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"


def emulator_note(report: dict) -> str | None:
    if not report.get("emulated"):
        return None
    return ("Answers produced by the vidpipe provider emulator, not by a model: descriptions and the summary "
            "are synthetic, and the spend is what the model would have cost.")


def anomaly_notes(report: dict) -> list[str]:
    check = report.get("usage_check") or {}
    notes = []
    for a in check.get("anomalies", []):
        what = ("the provider reported far fewer prompt tokens than its images cost: the images were probably "
                "dropped on the way (a gateway that strips them, or a text-only model)"
                if a["verdict"] == "images_dropped" else
                "the provider reported far more prompt tokens than its own image rules give")
        notes.append(f"Usage anomaly in segment {a['segment'] + 1}, chunk {a['chunk'] + 1}: "
                     f"{a['reported_prompt_tokens']} prompt tokens reported for {plural(a['images'], 'image')} "
                     f"(expected about {a['expected_prompt_tokens']}); {what}.")
    return notes


def render_html(report: dict, thumbnails: dict[int, bytes]) -> str:
    """The page for ``report`` (report.json's document); ``thumbnails`` maps a scene
    index to its keyframe's image bytes (a scene without one shows no picture)."""
    video, sampling, spend, scenes = report["video"], report["sampling"], report["spend"], report["scenes"]
    duration = max(float(video["duration_s"]), 1e-6)
    title = f"Video report: {report['source']['key']}"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>",
           f"<h1>{escape(title)}</h1>",
           f'<p class="meta">{escape(timecode(video["duration_s"]))} long, {video["width"]}x{video["height"]} at '
           f'{video["fps"]:.3g} fps ({escape(str(video["codec"]))}). {plural(len(scenes), "shot")}; '
           f'{plural(sampling["frames_analyzed"], "frame")} analyzed by {escape(str(report["model"]))} '
           f'({escape(str(sampling["strategy"]))} sampling). Job {escape(str(report["job_id"]))}.</p>']
    note = emulator_note(report)
    if note:
        out.append(f'<p class="note emulator" id="emulator-note">{escape(note)}</p>')
    out += [f'<p class="note anomaly">{escape(n)}</p>' for n in anomaly_notes(report)]

    out.append("<h2>Summary</h2>")
    out.append(f"<p>{escape(report.get('summary') or 'No summary.')}</p>")
    if report.get("tags"):
        out.append('<p class="tags">' + "".join(f"<span>{escape(t)}</span>" for t in report["tags"]) + "</p>")

    out.append("<h2>Timeline</h2>")
    out.append('<nav class="strip" aria-label="shots">')
    for scene in scenes:
        n = scene["index"] + 1
        share = max(MIN_STRIP_SHARE, (scene["end_s"] - scene["start_s"]) / duration)
        image = thumbnails.get(scene["index"])
        picture = f'<img src="{data_uri(image)}" alt="shot {n}">' if image else ""
        out.append(f'<a href="#shot-{n}" class="strip-shot" data-shot="{n}" style="flex:{share:.4f} 1 0">'
                   f'{picture}<span>{n} · {escape(timecode(scene["start_s"]))}</span></a>')
    out.append("</nav>")

    out.append(f"<h2>{plural(len(scenes), 'Shot')}</h2>")
    for scene in scenes:
        n = scene["index"] + 1
        image = thumbnails.get(scene["index"])
        picture = (f'<img src="{data_uri(image)}" alt="shot {n} at {escape(timecode(scene["keyframe_s"]))}">'
                   if image else "")
        rows = [("Subjects", ", ".join(scene.get("subjects", []))), ("Actions", ", ".join(scene.get("actions", []))),
                ("On screen", " / ".join(scene.get("text_on_screen", [])))]
        details = "".join(f"<dt>{label}</dt><dd>{escape(value) or '—'}</dd>" for label, value in rows)
        out.append(f'<section class="shot" id="shot-{n}" data-shot="{n}">{picture}<div>'
                   f'<h3>Shot {n} · {escape(timecode(scene["start_s"]))}–{escape(timecode(scene["end_s"]))}'
                   f' ({plural(scene.get("frames", 0), "frame")})</h3>'
                   f'<p>{escape(scene.get("description") or "")}</p><dl>{details}</dl></div></section>')

    out.append("<h2>Spend</h2><table>")
    spend_rows = [("Model", escape(str(spend.get("model") or report["model"]))),
                  ("Provider calls", str(spend["calls"])),
                  ("Input tokens", f"{spend['input_tokens']:,}"), ("Output tokens", f"{spend['output_tokens']:,}"),
                  ("Cost", f"${escape(str(spend['cost_usd']))}"),
                  ("Reserved estimate", f"${escape(str(spend.get('estimate_usd', '')))}")]
    out += [f'<tr><th>{label}</th><td class="n">{value}</td></tr>' for label, value in spend_rows]
    out.append("</table>")
    if note:
        out.append(f'<p class="meta">{escape(note)}</p>')
    out.append("</main></body></html>")
    return "\n".join(out)
