"""Pure media code on local files, arrays and bytes (PyAV, NumPy, Pillow; no AWS, no OpenCV).

    probe          VideoInfo from container metadata + the first frame; caps
    sampling       streaming frame samplers over a segment (uniform, scene, keyframes)
    scenes         the shot-change detector the scene sampler uses
    dedupe         near-duplicate dropping (dHash)
    resize         frames at the size a model charges least for, as JPEG
    contact_sheet  captioned grid of frames
    verify         checks on a produced video; poster frame
    decoding       PyAV plumbing shared by the above
    h264           what an H.264 packet says before decoding (whether anything refers to it)
"""
