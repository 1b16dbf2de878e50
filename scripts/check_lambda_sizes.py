"""After `sam build`: every function plus all its layers must unzip to at most
250 MiB (Lambda's limit). The media layer alone is ~196 MiB, so a new
dependency can silently break deploys; this catches it in CI."""

from __future__ import annotations

import sys
from pathlib import Path

from vidpipe_local.stack.template import load_template

LIMIT_MIB = 250


def size_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def main(build_dir: str = ".aws-sam/build") -> int:
    build = Path(build_dir)
    template = load_template(build / "template.yaml")
    global_layers = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    layer_sizes: dict[str, float] = {}
    worst = 0.0
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        layers = [ref["Ref"] for ref in global_layers + res["Properties"].get("Layers", [])]
        for layer in layers:
            layer_sizes.setdefault(layer, size_mib(build / layer))
        total = size_mib(build / name) + sum(layer_sizes[layer] for layer in layers)
        worst = max(worst, total)
        flag = "" if total <= LIMIT_MIB else f"  OVER {LIMIT_MIB} MiB"
        print(f"{name:<28} {total:7.1f} MiB  ({' + '.join(layers)}){flag}")
    return 0 if worst <= LIMIT_MIB else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
