import cv2
import numpy as np
import pytest

from vidpipe.media.contact_sheet import CAPTION_HEIGHT, GUTTER, make_contact_sheet
from vidpipe.timecode import timecode
from vidpipe.media.resize import encode_jpeg


def _decode(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def _tile(colour, size=(640, 360)):
    return np.full((size[1], size[0], 3), colour, np.uint8)


def test_given_six_tiles_in_four_columns_when_a_sheet_is_made_then_it_is_a_two_row_grid_of_captioned_cells():
    tiles = [(_tile((40 * i, 80, 200)), f"{timecode(i * 2.5)} — scene {i + 1}") for i in range(6)]

    sheet = _decode(make_contact_sheet(tiles, columns=4, tile_width=320))

    cell_h = 180 + CAPTION_HEIGHT
    assert sheet.shape == (GUTTER + 2 * (cell_h + GUTTER), GUTTER + 4 * (320 + GUTTER), 3)
    caption_strip = sheet[GUTTER + 180 : GUTTER + cell_h, GUTTER : GUTTER + 320]
    assert caption_strip.max() > 150  # the caption text is drawn in light pixels on the dark bar


def test_given_jpeg_bytes_and_arrays_of_different_shapes_when_a_sheet_is_made_then_all_are_placed():
    tiles = [(encode_jpeg(_tile((0, 0, 255))), "a"), (_tile((0, 255, 0), size=(180, 320)), "b")]

    sheet = _decode(make_contact_sheet(tiles, columns=2, tile_width=160))

    tallest = round(160 * 320 / 180)  # the portrait tile sets the cell height
    assert sheet.shape[0] == GUTTER + tallest + CAPTION_HEIGHT + GUTTER
    middle_row = sheet[GUTTER + tallest // 2]
    red_cell, green_cell = middle_row[GUTTER + 80], middle_row[2 * GUTTER + 160 + 80]
    assert red_cell[2] > 200 and green_cell[1] > 200


def test_given_a_long_caption_with_accents_and_dashes_when_a_sheet_is_made_then_it_stays_inside_its_cell():
    caption = "00:01:23.5 — Scène 3, café crème, a caption far too long to fit under one tile"

    sheet = _decode(make_contact_sheet([(_tile((0, 0, 0)), caption)], columns=1, tile_width=160))

    caption_bar = sheet[GUTTER + 90 : GUTTER + 90 + CAPTION_HEIGHT]
    assert caption_bar[:, GUTTER : GUTTER + 160].max() > 150
    assert caption_bar[:, GUTTER + 160 :].max() < 60  # nothing drawn over the right-hand gutter


def test_given_bytes_that_are_no_image_when_a_sheet_is_made_then_it_refuses():
    with pytest.raises(ValueError):
        make_contact_sheet([(b"not an image", "x")])


def test_given_no_tiles_when_a_sheet_is_made_then_it_refuses():
    with pytest.raises(ValueError):
        make_contact_sheet([])


@pytest.mark.parametrize(("seconds", "label"), [(0, "0:00.0"), (83.5, "1:23.5"), (3725.04, "1:02:05.0"),
                                                (59.96, "1:00.0"), (3599.97, "1:00:00.0")])
def test_given_seconds_when_labelled_then_hours_minutes_seconds_and_tenths(seconds, label):
    assert timecode(seconds) == label
