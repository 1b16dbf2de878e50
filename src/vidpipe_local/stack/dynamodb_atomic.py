"""Make moto serve one DynamoDB request at a time, as DynamoDB's contract requires, and roll back
a cancelled transaction item by item.

moto 5.2.5 holds no lock while serving a request: two conditional updates can
both pass their check, and a cancelled transaction restores a deep copy of the
whole table, wiping what other threads wrote meanwhile. Concurrent Lambdas on
the local stack (Map states, pollers) would see budgets that do not hold.
With this lock each request is atomic and transactions serialisable.

moto also deep-copies every table a TransactWriteItems names before it starts, to
restore it if the transaction is cancelled: the cost grows with the table, so a
long run (every ledger write is a transaction) slowed down and churned gigabytes
(docs/scale.md). Under the lock only the items the transaction touches can change,
so here those items alone are saved and put back.
"""

from __future__ import annotations

import copy
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

from vidpipe_local.stack.patching import ClassPatches


class AtomicDynamoDB(ClassPatches):
    lock = threading.RLock()

    def patch(self) -> None:
        original_call = DynamoHandler.call_action
        lock = self.lock

        def call_action(handler):
            with lock:
                return original_call(handler)

        self.replace(DynamoHandler, "call_action", call_action)
        # The backend's own `copy.deepcopy(table)` becomes the table itself: its rollback then
        # puts back the same object, and the saved items below do the restoring.
        self.replace(dynamodb_models, "copy", _TablesNotCopied())
        self.replace(DynamoDBBackend, "transact_write_items",
                     _rolled_back_by_item(DynamoDBBackend.transact_write_items))


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto.dynamodb.models."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _rolled_back_by_item(original):
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict]) -> None:
        saved = [_saved_item(self, entry) for entry in transact_items]
        try:
            return original(self, transact_items)
        except BaseException:
            for entry in reversed(saved):
                if entry is not None:
                    _restore(*entry)
            raise

    return transact_write_items


def _saved_item(backend: DynamoDBBackend, entry: dict):
    """(table, hash, range, a copy of the item or None) for one operation; None if the operation
    names no existing table or no whole key (moto then refuses it before writing anything)."""
    try:
        (_, op), = entry.items()
        table = backend.tables[op["TableName"]]
        key = op.get("Key") or op["Item"]
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))


def _restore(table: Table, hash_value: DynamoType, range_value: DynamoType | None, item) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
    elif item is None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items[hash_value][range_value] = item
