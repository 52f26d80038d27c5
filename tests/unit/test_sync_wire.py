"""The sync framing: headers, chunked content, trailers, truncation."""

from __future__ import annotations

import io

import pytest

from sidecar.sync_wire import (
    FrameReader,
    WireError,
    conflict_name,
    encode_data,
    encode_end,
    encode_header,
    is_private_name,
)


def test_round_trip_of_headers_and_content() -> None:
    stream = (encode_header({"op": "file", "path": "ünï côdé.txt"}) + encode_data(b"ab") + encode_data(b"c")
              + encode_end({"sha256": "x"}) + encode_header({"op": "commit"}))
    reader = FrameReader(io.BytesIO(stream))
    assert reader.header() == {"op": "file", "path": "ünï côdé.txt"}
    assert b"".join(reader.content()) == b"abc" and reader.trailer == {"sha256": "x"}
    assert reader.header() == {"op": "commit"}
    assert reader.header() is None


def test_truncated_and_foreign_streams_are_errors() -> None:
    whole = encode_header({"op": "file"}) + encode_data(b"abcdef")
    reader = FrameReader(io.BytesIO(whole[:-2]))
    reader.header()
    with pytest.raises(WireError):
        list(reader.content())
    with pytest.raises(WireError):
        FrameReader(io.BytesIO(b"SSH-2.0-OpenSSH\r\n")).header()
    reader = FrameReader(io.BytesIO(encode_header({"op": "file"})))
    reader.header()
    with pytest.raises(WireError):
        list(reader.content())


def test_private_and_conflict_names(tmp_path: object) -> None:
    assert is_private_name(".nhdev-sync-index") and not is_private_name("sub/.nhdev-sync-index")
    assert is_private_name("a/b/.nhdev-tmp-x-1")
    assert ".nhdev-conflict-" in conflict_name("/nonexistent/f.txt")
