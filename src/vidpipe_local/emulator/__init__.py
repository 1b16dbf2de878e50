"""Provider emulator: chat completions and async video generation over real
HTTP on 127.0.0.1, with the providers' wire shapes, token accounting,
pixel-derived answers, clock-driven jobs, fault injection and the bill a
provider would send (bill.py).

An independent oracle: nothing here imports the deployed ``vidpipe`` package
(its token rules are its own, tokens.py; tests/emulator/test_independence.py)."""

from vidpipe_local.emulator.calls import Call
from vidpipe_local.emulator.faults import Fault, FaultSpecError, parse_spec
from vidpipe_local.emulator.pixels import image_signature
from vidpipe_local.emulator.server import Emulator

__all__ = ["Call", "Emulator", "Fault", "FaultSpecError", "image_signature", "parse_spec"]
