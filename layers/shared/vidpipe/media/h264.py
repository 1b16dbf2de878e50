"""What an H.264 packet says before it is decoded: whether any other picture refers to its picture.

Only for H.264 stored as in MP4 / MOV (``avcC``: each NAL unit behind its length); streams with start
codes (MPEG-TS) and other codecs are left to the decoder's own ``skip_frame``.
"""

from __future__ import annotations

_SLICE, _IDR_SLICE = 1, 5  # nal_unit_type of a picture's coded slices (ITU-T H.264 table 7-1)


def nal_length_size(codec_name: str, extradata: bytes | None) -> int | None:
    """The size of the NAL unit lengths (1, 2 or 4 bytes) of an H.264 stream stored as in MP4, read from
    its ``avcC`` record (ISO/IEC 14496-15 5.3.3.1: configurationVersion 1, then lengthSizeMinusOne in the
    low 2 bits of the 5th byte); None for anything else."""
    if codec_name != "h264" or not extradata or len(extradata) < 7 or extradata[0] != 1:
        return None
    size = (extradata[4] & 3) + 1
    return size if size in (1, 2, 4) else None


def unreferenced(data: bytes | memoryview, length_size: int) -> bool:
    """Whether the picture in a packet is one no other picture refers to: the packet holds coded slices
    and every one has nal_ref_idc 0 (7.4.1: zero in one slice of a picture, zero in all). Anything else
    (no slice, a length running past the end) says False, and the packet is decoded as usual."""
    view = memoryview(data)
    end, at, slices = len(view), 0, 0
    while at < end:
        if at + length_size >= end:
            return False
        length = int.from_bytes(view[at : at + length_size], "big")
        header = view[at + length_size]
        if length == 0 or at + length_size + length > end:
            return False
        if header & 0x1F in (_SLICE, _IDR_SLICE):
            if header >> 5 & 3:
                return False
            slices += 1
        at += length_size + length
    return slices > 0
