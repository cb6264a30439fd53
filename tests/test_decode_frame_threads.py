"""One big JPEG 2000 frame (a mammogram) is decoded by OpenJPEG on several threads when
nothing else uses the cores, and on one thread where frames are already decoded side by side
(the decode pool, DataLoader workers) or the frame is small. The output does not depend on it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from dicomml.decode import syntaxes as ts
from dicomml.decode.codecs_imagecodecs import (
    THREADED_FRAME_PIXELS,
    ImagecodecsJpeg2k,
    frame_threads,
)
from dicomml.decode.info import FrameInfo
from dicomml.decode.threads import available_cores, run_each

imagecodecs = pytest.importorskip("imagecodecs")

BIG = FrameInfo(ts.JPEG2000_LOSSLESS, rows=1024, columns=1024, bits_allocated=16,
                bits_stored=12)
SMALL = FrameInfo(ts.JPEG2000_LOSSLESS, rows=512, columns=512, bits_allocated=16,
                  bits_stored=12)


@pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores")
def test_big_frames_use_the_cores_small_ones_do_not():
    assert BIG.rows * BIG.columns >= THREADED_FRAME_PIXELS
    assert frame_threads(BIG) == min(available_cores(), 8)
    assert frame_threads(SMALL) == 1


def test_one_thread_on_the_decode_pool():
    seen = []
    run_each(lambda _: seen.append((threading.current_thread().name, frame_threads(BIG))),
             range(4), threads=2)
    assert {n for _, n in seen} == {1}
    assert all(name.startswith("dicomml-decode") for name, _ in seen)


class _Threads(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return torch.tensor(frame_threads(BIG))


def test_one_thread_in_dataloader_workers():
    loader = DataLoader(_Threads(), batch_size=None, num_workers=1)
    assert [int(n) for n in loader] == [1, 1]


def test_threaded_decode_equals_one_thread():
    rng = np.random.default_rng(4)
    image = (np.cumsum(rng.integers(0, 64, (BIG.rows, BIG.columns)), axis=1) % 4096)
    image = image.astype(np.uint16)
    stream = imagecodecs.jpeg2k_encode(image, level=0, codecformat="J2K", reversible=True)
    decoder = ImagecodecsJpeg2k()
    threaded = decoder.decode(stream, BIG)
    single = imagecodecs.jpeg2k_decode(stream, numthreads=1)
    np.testing.assert_array_equal(threaded, image)
    np.testing.assert_array_equal(single, image)
    out = np.empty((BIG.rows, BIG.columns), np.uint16)
    assert decoder.decode_into(stream, BIG, out) is out
    np.testing.assert_array_equal(out, image)
