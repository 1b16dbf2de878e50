"""Spend control: prices, the ledger, budgets, the shared rate limit.

Every guarantee here holds across concurrent Lambdas because each one is a
DynamoDB conditional write or transaction, never an in-process lock.

    prices.py      the price table (configuration) and call costs
    ledger.py      one entry per billed provider call; job totals and aggregates; intents
    usage.py       reported vs expected prompt tokens (dropped images)
    scopes.py      which budgets a reservation must fit
    budgets.py     reserve / charge / settle / release / sweep
    alarms.py      BudgetUtilization metric, SNS alarm once per crossing
    ratelimit.py   a token bucket per provider
    accounting.py  DynamoAccounting: the flows' Accounting built from all of the above
    ddb.py         shared DynamoDB plumbing (clock, transactions, queries)
"""
