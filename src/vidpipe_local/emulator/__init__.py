"""Provider emulator: chat completions and async video generation over real
HTTP on 127.0.0.1, with the providers' wire shapes, token accounting,
pixel-derived answers, clock-driven jobs and fault injection."""

from vidpipe_local.emulator.calls import Call
from vidpipe_local.emulator.faults import Fault, FaultSpecError, parse_spec
from vidpipe_local.emulator.pixels import image_signature
from vidpipe_local.emulator.server import Emulator

__all__ = ["Call", "Emulator", "Fault", "FaultSpecError", "image_signature", "parse_spec"]
