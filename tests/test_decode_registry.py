"""The decoder registry, `dicomml doctor`, missing-decoder errors and thread defaults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from dicomml.decode import decoders, decoders_for, get_decoder
from dicomml.decode import syntaxes as ts
from dicomml.decode.threads import default_threads

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_table_lists_every_syntax_with_an_ordered_available_decoder():
    table = decoders()
    assert set(table) == set(ts.NAMES)
    for uid, entry in table.items():
        assert entry["available"], f"nothing decodes {uid} here"
        assert [d.name for d in decoders_for(uid)] == entry["available"]
    assert table[ts.JPEG_LS_LOSSLESS]["available"][0] == "imagecodecs-jpegls"


def test_env_override_puts_a_decoder_first(monkeypatch):
    rle_order = [d.name for d in decoders_for(ts.RLE_LOSSLESS)]
    assert decoders_for(ts.JPEG_LS_LOSSLESS)[0].name == "imagecodecs-jpegls"
    monkeypatch.setenv("DICOMML_DECODERS", "pyjpegls")
    assert decoders_for(ts.JPEG_LS_LOSSLESS)[0].name == "pyjpegls"
    assert [d.name for d in decoders_for(ts.RLE_LOSSLESS)] == rle_order  # not applicable


def test_unknown_decoder_name():
    with pytest.raises(KeyError, match="known"):
        get_decoder("nope")


_BLOCKED = textwrap.dedent("""
    import sys
    import pydicom  # loads pylibjpeg's plugins first: pylibjpeg itself needs libjpeg
    for name in ("imagecodecs", "libjpeg", "jpeg_ls", "_CharLS"):
        sys.modules[name] = None  # any later import of these fails, as if not installed
    from pydicom.data import get_testdata_file
    from dicomml.decode import read_pixels
    from dicomml.errors import DecoderNotAvailableError
    try:
        read_pixels(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    except DecoderNotAvailableError as exc:
        print("EXTRA", exc.extra)
        print("MESSAGE", exc)
    print("RLE", read_pixels(get_testdata_file("MR_small_RLE.dcm")).shape)
    from dicomml.decode.cli import format_table
    from dicomml.decode import decoders
    print(format_table(decoders()))
""")


def test_missing_decoder_names_syntax_and_extra():
    """With the optional packages made unimportable (``sys.modules[name] = None``, in a
    child process), JPEG-LS has no decoder left while the core ones still work."""
    proc = subprocess.run([sys.executable, "-c", _BLOCKED], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "EXTRA fast" in out
    assert "JPEG-LS Lossless (1.2.840.10008.1.2.4.80)" in out
    assert 'pip install "dicomml[fast]"' in out
    assert "RLE (1, 64, 64)" in out  # core decoders still work
    assert "JPEG-LS Lossless (1.2.840.10008.1.2.4.80): NONE INSTALLED" in out


def test_doctor_cli_prints_the_registry(capsys):
    import argparse

    from dicomml.decode.cli import register

    parser = argparse.ArgumentParser(prog="dicomml")
    register(parser.add_subparsers())
    args = parser.parse_args(["doctor"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "HTJ2K Lossless (1.2.840.10008.1.2.4.201): imagecodecs-htj2k" in out
    assert "gdcm is never used" in out
    args = parser.parse_args(["doctor", "--json"])
    assert args.func(args) == 0
    assert '"1.2.840.10008.1.2.4.80"' in capsys.readouterr().out


def test_threads_default():
    assert default_threads(releases_gil=False) == 1
    assert default_threads(releases_gil=True, tasks=1) == 1
    assert default_threads(releases_gil=True) >= 1


class _ThreadsInWorker:
    def __len__(self):
        return 1

    def __getitem__(self, i):
        return default_threads(releases_gil=True, tasks=16)


def test_one_thread_inside_dataloader_workers():
    torch = pytest.importorskip("torch")
    loader = torch.utils.data.DataLoader(_ThreadsInWorker(), num_workers=1, batch_size=None)
    assert list(loader) == [1]
