"""``vidpipe`` console script: subcommands live in vidpipe_local.commands.*

What a person sees: results on stdout; on failure one readable line on stderr
plus where the log is. Logs go to a file (vidpipe_local.logs); ``--verbose``
streams them to stderr as well.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys

from vidpipe_local import commands


class CommandError(Exception):
    """A failure to report in one readable line (no traceback)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def add_common_options(parser: argparse.ArgumentParser, stack: bool = True) -> None:
    """``--verbose`` for every command; ``--stack URL`` for those that use a local stack."""
    parser.add_argument("--verbose", "-v", action="store_true", help="stream the logs to stderr as well")
    if stack:
        parser.add_argument("--stack", metavar="URL",
                            help="the `vidpipe local up` stack to use, e.g. http://127.0.0.1:4566 "
                                 "(default: the one that is up, else an in-process stack)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidpipe", description="vidpipe: serverless video AI, run locally")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"vidpipe_local.commands.{mod.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from vidpipe_local import logs
    from vidpipe_local.state import log_file

    args = build_parser().parse_args(argv)
    with logs.routed_logs(verbose=getattr(args, "verbose", False)) as log:
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            return 130
        except CommandError as exc:
            print(f"vidpipe: {exc}", file=sys.stderr)
            return exc.exit_code
        except Exception as exc:  # a bug or an unexpected failure: one line here, the traceback in the log
            import logging

            logging.getLogger("vidpipe_local").exception("command failed")
            where = log.path or log.open(log_file("vidpipe.log"))
            print(f"vidpipe: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)
            print(f"vidpipe: log: {where}", file=sys.stderr)
            return 1


def stop_on_ctrl_c_or_kill() -> None:
    """For a command that serves until Ctrl-C: SIGINT raises KeyboardInterrupt even when the process
    started with SIGINT ignored (a script's background job inherits that, and Python then keeps it
    ignored), and SIGTERM (`kill`) stops it the same way."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def fail_with_log(message: str, exit_code: int = 1) -> CommandError:
    """A CommandError whose line says where the log is."""
    from vidpipe_local import logs

    stream = logs.active()
    where = f" (log: {stream.path})" if stream is not None and stream.path else ""
    return CommandError(f"{message}{where}", exit_code)


if __name__ == "__main__":
    # `python -m vidpipe_local.cli`: run the imported module's main, so the commands'
    # CommandError is the class main() catches (not a copy defined in __main__).
    from vidpipe_local.cli import main as imported_main

    sys.exit(imported_main())
