"""The S3 key layout of one analysis job (all in the media bucket).

Keys are derived from the job id and indices alone, so any step can find
another step's output without passing lists through the state machine.
"""


def frame_key(job_id: str, segment: int, n: int) -> str:
    return f"work/{job_id}/frames/{segment}/{n}.jpg"


def manifest_key(job_id: str, segment: int) -> str:
    return f"work/{job_id}/manifests/{segment}.json"


def chunk_key(job_id: str, segment: int, chunk: int) -> str:
    return f"work/{job_id}/chunks/{segment}-{chunk}.json"


def report_prefix(job_id: str) -> str:
    return f"reports/{job_id}/"


def report_json_key(job_id: str) -> str:
    return report_prefix(job_id) + "report.json"


def report_md_key(job_id: str) -> str:
    return report_prefix(job_id) + "report.md"


def contact_sheet_key(job_id: str) -> str:
    return report_prefix(job_id) + "contact_sheet.jpg"
