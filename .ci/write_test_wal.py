#!/usr/bin/env python3
"""Writes write-ahead-log segments from docs/FORMAT.md alone (an independent
writer of the format), for .ci/cli_smoke.sh:
  write_test_wal.py DIR
    DIR/damaged.iqdb.wal-*: LSNs 1..5 with LSN 3 corrupted, then 6..9 with 9 torn
    DIR/crashed.iqdb.wal-*: LSNs 1..3 with a torn tail, as a crash leaves it
"""
import struct
import sys
import zlib


def header(number, first_lsn):
    fields = b"IQDBWLOG" + struct.pack("<IIQQ", 2, 1, number, first_lsn) + bytes(12)
    return fields + struct.pack("<I", zlib.crc32(fields))


def frame(lsn, body):
    # Durable LSN lsn - 1: as if every frame was synced before the next one.
    covered = struct.pack("<IQQ", len(body), lsn, lsn - 1) + body
    return struct.pack("<I", zlib.crc32(covered)) + covered


def insert_body(vector_id, vector):
    return (b"\x01" + b"\x00" + struct.pack("<Q", vector_id) + struct.pack("<I", len(vector))
            + struct.pack("<%df" % len(vector), *vector) + struct.pack("<I", 0))


def write_segment(path, number, first_lsn, count, tear=0, flip=None):
    data = bytearray(header(number, first_lsn))
    offsets = []
    for i in range(count):
        offsets.append(len(data))
        data += frame(first_lsn + i, insert_body(first_lsn + i, [float(i), 1.0]))
    if flip is not None:
        data[offsets[flip] + 20] ^= 0x10
    with open(path, "wb") as out:
        out.write(data[:len(data) - tear])


def main():
    directory = sys.argv[1]
    write_segment(directory + "/damaged.iqdb.wal-0000000000000001", 1, 1, 5, flip=2)
    write_segment(directory + "/damaged.iqdb.wal-0000000000000002", 2, 6, 4, tear=3)
    write_segment(directory + "/crashed.iqdb.wal-0000000000000001", 1, 1, 4, tear=5)


if __name__ == "__main__":
    main()
