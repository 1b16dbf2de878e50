"""What an H.264 packet says before it is decoded: whether decoding may leave it out (no other picture
refers to its picture, and it holds nothing later pictures need).

Only for H.264 stored as in MP4 / MOV (``avcC``: each NAL unit behind its length); streams with start
codes (MPEG-TS) and other codecs are left to the decoder's own ``skip_frame``.
"""

from __future__ import annotations

_SLICE = 1  # nal_unit_type of a coded slice of a non-IDR picture (ITU-T H.264 table 7-1)
# Beside them, a packet left out may hold only what says nothing to later pictures: an access unit
# delimiter, filler. Parameter sets, SEI (some persist, e.g. display orientation), an end of sequence
# and the rest go to the decoder, which then skips the picture itself (``skip_frame``).
_HARMLESS = frozenset({9, 12})


def nal_length_size(codec_name: str, extradata: bytes | None) -> int | None:
    """The size of the NAL unit lengths (1, 2 or 4 bytes) of an H.264 stream stored as in MP4, read from
    its ``avcC`` record (ISO/IEC 14496-15 5.3.3.1: configurationVersion 1, then lengthSizeMinusOne in the
    low 2 bits of the 5th byte); None for anything else."""
    if codec_name != "h264" or not extradata or len(extradata) < 7 or extradata[0] != 1:
        return None
    size = (extradata[4] & 3) + 1
    return size if size in (1, 2, 4) else None


def may_be_left_out(data: bytes | memoryview, length_size: int) -> bool:
    """Whether a packet can be left out of decoding: it holds the coded slices of a picture no other
    picture refers to (nal_ref_idc 0 in each: 7.4.1, zero in one slice of a picture, zero in all) and
    nothing else that matters to later pictures. Anything else (another NAL unit, no slice, a length
    running past the end) says False, and the packet is decoded as usual."""
    view = memoryview(data)
    end, at, slices = len(view), 0, 0
    while at < end:
        if at + length_size >= end:
            return False
        length = int.from_bytes(view[at : at + length_size], "big")
        header = view[at + length_size]
        if length == 0 or at + length_size + length > end:
            return False
        if header & 0x1F == _SLICE and not header >> 5 & 3:
            slices += 1
        elif header & 0x1F not in _HARMLESS:
            return False
        at += length_size + length
    return slices > 0
