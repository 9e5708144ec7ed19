"""Archives written byte by byte, so that tests can build what zipfile's
writer never would: members that overlap, sizes that lie."""
import io
import struct
import zlib

import numpy as np

LOCAL = struct.Struct("<4s5H3L2H")
CENTRAL = struct.Struct("<4s6H3L5H2L")


def npy(a) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def local(name: str, data: bytes) -> bytes:
    """A stored member's local header, name and data."""
    return LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(data), len(data), len(data),
                      len(name), 0) + name.encode() + data


def raw_zip(records, entries) -> bytes:
    """A stored archive from local records (bytes) and central-directory
    entries (name, offset, data) written as given, however they overlap."""
    body = b"".join(records)
    central = b""
    for name, offset, data in entries:
        central += CENTRAL.pack(b"PK\x01\x02", 20, 20, 0, 0, 0, 0, zlib.crc32(data), len(data),
                                len(data), len(name), 0, 0, 0, 0, 0, offset) + name.encode()
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(central), len(body), 0)
    return body + central + end


def nested(members: dict, inner: str, outer: str) -> bytes:
    """The members as a stored archive in which member `inner` lies inside
    the data of member `outer` (a .npy of bytes), each listed once in the
    central directory: both read on their own, their ranges overlap."""
    inner_record = local(inner, members[inner])
    outer_data = npy(np.frombuffer(inner_record, np.uint8))
    records, entries, offset = [], [], 0
    for name, data in members.items():
        if name not in (inner, outer):
            records.append(local(name, data))
            entries.append((name, offset, data))
            offset += len(records[-1])
    records.append(local(outer, outer_data))
    entries.append((outer, offset, outer_data))
    entries.append((inner, offset + len(records[-1]) - len(inner_record), members[inner]))
    return raw_zip(records, entries)
