"""vidpipe's local side: the local AWS stack, the provider emulator and the CLI.

Never deployed: the Lambda layer ships only the ``vidpipe`` package.
"""
