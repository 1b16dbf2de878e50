"""``vidpipe`` console script: subcommands live in vidpipe_local.commands.*"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from vidpipe_local import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidpipe", description="vidpipe: serverless video AI, run locally")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"vidpipe_local.commands.{mod.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except CommandError as exc:
        print(f"vidpipe: {exc}", file=sys.stderr)
        return exc.exit_code


class CommandError(Exception):
    """A failure to report in one readable line (no traceback)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


if __name__ == "__main__":
    sys.exit(main())
