"""Replacing attributes of moto's classes while a local stack runs, and putting them back."""

from __future__ import annotations

_ABSENT = object()  # the class had no attribute of its own (it inherited one, or none)


class ClassPatches:
    """``replace`` remembers what a class held (its own ``__dict__`` entry); ``unpatch``
    restores it, newest first, deleting what the class did not define itself."""

    def __init__(self) -> None:
        self._saved: list[tuple[type, str, object]] = []

    def replace(self, owner: type, name: str, new) -> None:
        self._saved.append((owner, name, owner.__dict__.get(name, _ABSENT)))
        setattr(owner, name, new)

    def unpatch(self) -> None:
        for owner, name, original in reversed(self._saved):
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._saved.clear()
