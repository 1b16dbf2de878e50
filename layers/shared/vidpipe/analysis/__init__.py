"""The analysis flow's domain logic, one module per Step Functions step:
probe → plan → extract → analyze → summarize (+ report rendering).

Every function takes its clients (S3, ChatClient, Accounting) as arguments;
the thin handlers in functions/* build them with ``vidpipe.runtime.deps()``.
"""
