"""A minimal BIOPAC AcqKnowledge file, written with bioread's own header definitions.

bioread reads .acq files but cannot write them and ships no sample files, so the tests
build one: an uncompressed, little-endian file of revision 3.7.3 (the last before
marker metadata), with 16-bit channels (value = raw x scale + offset, as an MP150
stores them), global event markers and an empty journal. Each header is the ctypes
structure bioread unpacks for that revision, so the file is exactly what bioread
expects to find.
"""

import ctypes

import numpy as np
from bioread import file_revisions
from bioread import headers as bh

REVISION = file_revisions.V_373
BYTE_ORDER = "<"


def _header(cls, **fields):
    header = cls.for_revision(REVISION, BYTE_ORDER, encoding="latin1")
    structure = header._struct_class()
    for name, value in fields.items():
        setattr(structure, name, value)
    return structure


def write_acq(path, fs, channels, markers=()):
    """channels: [(name, units, samples, scale)] with samples in units; markers:
    [(sample, text)]. Samples are stored as int16 of samples / scale."""
    n_samples = len(channels[0][2])
    graph = _header(
        bh.GraphHeader,
        lVersion=REVISION,
        nChannels=len(channels),
        dSampleTime=1000.0 / fs,
    )
    graph.lExtItemHeaderLen = ctypes.sizeof(graph)
    parts = [bytes(graph)]
    raw = []
    for order, (name, units, samples, scale) in enumerate(channels):
        channel = _header(
            bh.ChannelHeader,
            nNum=order + 1,
            szCommentText=name.encode("latin1"),
            szUnitsText=units.encode("latin1"),
            lBufLength=n_samples,
            dAmplScale=scale,
            dAmplOffset=0.0,
            nChanOrder=order,
            nVarSampleDivider=1,
        )
        channel.lChanHeaderLen = ctypes.sizeof(channel)
        parts.append(bytes(channel))
        counts = np.round(np.asarray(samples) / scale)
        assert np.abs(counts).max() < 2**15, f"{name}: scale {scale} too fine"
        raw.append(counts.astype("<i2"))
    foreign = _header(bh.ForeignHeader, nType=0)
    foreign.nLength = ctypes.sizeof(foreign)
    parts.append(bytes(foreign))
    for _ in channels:
        parts.append(bytes(_header(bh.ChannelDTypeHeader, nSize=2, nType=2)))
    # Uncompressed data interleave the channels sample by sample.
    parts.append(np.column_stack(raw).tobytes())
    marker_header = _header(bh.MarkerHeader, lMarkers=len(markers))
    marker_header.lLength = ctypes.sizeof(marker_header)
    parts.append(bytes(marker_header))
    for sample, text in markers:
        encoded = text.encode("latin1")
        item = _header(bh.MarkerItemHeader, lSample=sample, nTextLength=len(encoded))
        # From revision 3.5 the text is stored with its terminating null.
        parts.append(bytes(item) + encoded + b"\0")
    journal = _header(
        bh.JournalHeader,
        tag=(ctypes.c_ubyte * 4)(*bh.JournalHeaderPre4.EXPECTED_TAG_VALUE),
        hShow=0,
        lJournalLen=0,
    )
    parts.append(bytes(journal))
    path.write_bytes(b"".join(parts))
    # What a reader should find: the stored values.
    return [r.astype(np.float64) * scale for r, (_, _, _, scale) in zip(raw, channels)]
