"""Make moto serve one DynamoDB request at a time, as DynamoDB's contract requires.

moto 5.2.5 holds no lock while serving a request: two conditional updates can
both pass their check, and a cancelled transaction restores a deep copy of the
whole table, wiping what other threads wrote meanwhile. Concurrent Lambdas on
the local stack (Map states, pollers) would see budgets that do not hold.
With this lock each request is atomic and transactions serialisable.
"""

from __future__ import annotations

import threading

from moto.dynamodb.responses import DynamoHandler


class AtomicDynamoDB:
    lock = threading.RLock()

    def __init__(self):
        self._original = None

    def patch(self) -> None:
        original = self._original = DynamoHandler.call_action
        lock = self.lock

        def call_action(handler):
            with lock:
                return original(handler)

        DynamoHandler.call_action = call_action

    def unpatch(self) -> None:
        if self._original is not None:
            DynamoHandler.call_action = self._original
            self._original = None
