"""The emulator is an independent oracle: nothing under
src/vidpipe_local/emulator imports the deployed ``vidpipe`` package, directly
or through another module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vidpipe_local.emulator

EMULATOR_DIR = Path(vidpipe_local.emulator.__file__).parent


def _is_vidpipe(module: str) -> bool:
    return module == "vidpipe" or module.startswith("vidpipe.")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "import_module", "__import__",
        ) and node.args and isinstance(node.args[0], ast.Constant):
            names.append(str(node.args[0].value))
    return names


def test_given_emulator_sources_when_parsed_then_no_import_names_vidpipe():
    sources = sorted(EMULATOR_DIR.rglob("*.py"))

    offenders = {
        str(path.relative_to(EMULATOR_DIR)): [name for name in _imports(path) if _is_vidpipe(name)]
        for path in sources
    }

    assert len(sources) >= 10  # the walk found the package
    assert {path: names for path, names in offenders.items() if names} == {}


def test_given_a_fresh_interpreter_when_the_emulator_is_imported_and_run_then_no_vidpipe_module_is_loaded():
    script = (
        "import sys\n"
        "from vidpipe_local.clock import VirtualClock\n"
        "from vidpipe_local.emulator import Emulator\n"
        "import vidpipe_local.emulator.server, vidpipe_local.emulator.tokens, vidpipe_local.emulator.bill\n"
        "with Emulator(clock=VirtualClock()) as emu:\n"
        "    emu.bill()\n"
        "print(sorted(m for m in sys.modules if m == 'vidpipe' or m.startswith('vidpipe.')))\n"
    )

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)

    assert out.stdout.strip() == "[]"
