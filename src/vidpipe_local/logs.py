"""Where a command's logs go: a file (``vidpipe.log`` in its output folder),
never the terminal, unless ``--verbose`` streams them to stderr too.

Everything that would otherwise reach stderr lands in the file: the handlers'
Powertools JSON lines, records of other libraries (moto's Step Functions
engine logs each failure event with its stack trace), Python warnings and
exceptions escaping a background thread. The file is chosen once the command
knows its output folder; what was logged before is kept in memory until then.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import warnings
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogStream(io.TextIOBase):
    """Text sink for every log handler: memory until ``open(path)``, then the file;
    with ``echo`` (``--verbose``) also that stream."""

    def __init__(self, echo=None):
        self._pending: list[str] = []
        self._file = None
        self._echo = echo
        self._lock = threading.Lock()
        self.path: Path | None = None
        self.pinned = False  # a command running others (the demo) keeps one log for all

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            if self._file is not None:
                self._file.write(text)
                self._file.flush()
            else:
                self._pending.append(text)
            if self._echo is not None:
                self._echo.write(text)
        return len(text)

    def open(self, path: Path, pin: bool = False) -> Path:
        """Write to ``path`` from now on (appending), starting with what was kept; returns
        the file in use (once pinned, the log stays where it is)."""
        with self._lock:
            if self.pinned and self.path is not None:
                return self.path
            self.pinned = self.pinned or pin
            if self._file is not None and self.path == path:
                return path
            path.parent.mkdir(parents=True, exist_ok=True)
            file = path.open("a", encoding="utf-8")
            file.write("".join(self._pending))
            file.flush()
            self._pending.clear()
            if self._file is not None:
                self._file.close()
            self._file, self.path = file, path
        return path

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        super().close()


_active: LogStream | None = None


def active() -> LogStream | None:
    """The running command's log stream (None outside a command)."""
    return _active


def log_to(path: Path, pin: bool = False) -> Path | None:
    """Send the running command's logs to ``path``; returns the file in use (None outside
    a command). ``pin``: later calls leave it there."""
    return _active.open(path, pin) if _active is not None else None


@contextmanager
def routed_logs(verbose: bool = False) -> Iterator[LogStream]:
    """For the length of a command: every log record, warning and background-thread
    exception goes to one LogStream. Restores the previous routing afterwards
    (tests run many commands in one process)."""
    global _active
    stream = LogStream(echo=sys.stderr if verbose else None)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    global _repointed, _propagation
    _repointed, _propagation = [], []
    saved_hook = threading.excepthook
    threading.excepthook = _log_thread_exception
    logging.captureWarnings(True)
    _active = stream
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            yield stream
    finally:
        _active = None
        logging.captureWarnings(False)
        threading.excepthook = saved_hook
        for h, original in _repointed:
            h.setStream(original)
        for logger, propagate in _propagation:
            logger.propagate = propagate
        root.removeHandler(handler)
        root.setLevel(saved_level)
        stream.close()


_repointed: list = []
_propagation: list = []


def adopt_terminal_handlers(stream: LogStream | None = None) -> None:
    """Loggers that write to the terminal themselves (Powertools' handler on "vidpipe")
    write to the command's log instead. Call before the Lambda handlers load (the
    local stack does): importing vidpipe.observability creates that logger, and it is
    slow to import (X-Ray SDK), so commands that run no handler never pay for it."""
    stream = stream or _active
    if stream is None:
        return
    import vidpipe.observability  # noqa: F401  (creates the "vidpipe" logger and its handler)

    # Powertools puts a SuppressFilter("vidpipe") on the root's handlers, and it drops every record
    # whose logger name merely contains "vidpipe": vidpipe_local's own lines too. The "vidpipe"
    # logger stops propagating below, so the filter has nothing left to prevent.
    for handler in logging.getLogger().handlers:
        if getattr(handler, "stream", None) is stream:
            for f in [f for f in handler.filters if type(f).__name__ == "SuppressFilter"]:
                handler.removeFilter(f)

    for name in ("vidpipe", "vidpipe_local.emulator"):
        logger = logging.getLogger(name)
        own = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)
               and not isinstance(h, logging.FileHandler)
               and h.stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)]
        for h in own:
            _repointed.append((h, h.stream))
            h.setStream(stream)
        if own and logger.propagate:  # its own handler writes the line: the root's must not write it twice
            _propagation.append((logger, logger.propagate))
            logger.propagate = False


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    logging.getLogger("vidpipe_local").error(
        "exception in thread %s", args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
