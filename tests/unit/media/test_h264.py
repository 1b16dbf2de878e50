"""Reading an H.264 packet before decoding it: whether any other picture refers to its picture."""

import av
import pytest

from vidpipe.media.h264 import may_be_left_out, nal_length_size


def _nal(ref_idc: int, nal_type: int, payload: bytes = b"\x88\x84\x00", length_size: int = 4) -> bytes:
    body = bytes([ref_idc << 5 | nal_type]) + payload
    return len(body).to_bytes(length_size, "big") + body


SEI, SLICE, IDR, PPS, AUD = 6, 1, 5, 8, 9


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        (_nal(0, SLICE) + _nal(0, SLICE), True),  # a b-frame in two slices, as x264 writes them
        (_nal(0, AUD) + _nal(0, SLICE), True),  # behind an access unit delimiter
        (_nal(2, SLICE), False),  # a P-frame, or a B-frame others refer to
        (_nal(3, IDR), False),
        (_nal(0, SLICE) + _nal(2, SLICE), False),  # (not valid H.264: any reference slice says no)
        (_nal(0, SEI) + _nal(0, SLICE), False),  # an SEI may persist into later pictures: the decoder reads it
        (_nal(3, PPS) + _nal(0, SLICE), False),  # a parameter set later pictures use
        (_nal(0, AUD), False),  # no slice at all
        (_nal(0, SLICE)[:-1], False),  # a length running past the end
        (b"", False),
    ],
    ids=["b-frame", "delimited", "reference", "idr", "mixed", "sei", "pps", "no-slice", "truncated", "empty"],
)
def test_given_a_packet_when_read_then_only_unreferenced_slices_and_delimiters_may_be_left_out(packet, expected):
    assert may_be_left_out(packet, 4) is expected


def test_given_two_byte_nal_lengths_when_read_then_the_slices_are_found_behind_them():
    assert may_be_left_out(_nal(0, SLICE, length_size=2), 2)
    assert not may_be_left_out(_nal(1, SLICE, length_size=2), 2)


def test_given_stream_headers_when_read_then_only_h264_stored_as_in_mp4_gives_a_length_size(cuts_and_fade):
    with av.open(str(cuts_and_fade.path)) as container:  # x264 in MP4: avcC, 4-byte lengths
        context = container.streams.video[0].codec_context
        assert nal_length_size(context.name, context.extradata) == 4
    avcc = bytes([1, 0x64, 0, 0x1F, 0xFD, 0xE1, 0, 0])  # lengthSizeMinusOne 1 in the 5th byte's low bits
    assert nal_length_size("h264", avcc) == 2
    assert nal_length_size("h264", b"\x00\x00\x00\x01\x67\x64") is None  # Annex B start codes (MPEG-TS)
    assert nal_length_size("h264", None) is None
    assert nal_length_size("hevc", avcc) is None
