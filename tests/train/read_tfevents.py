#!/usr/bin/env python3
"""Reads a TensorBoard event file without TensorFlow/TensorBoard, independently of our C++ writer:
checks each TFRecord's length and data masked CRC-32C, decodes the tensorflow.Event protobuf
fields we use (wall_time=1 double, step=2 int64, file_version=3 string, summary=5 {value=1 {tag=1,
simple_value=2 float}}), and prints a JSON list of events. Exits 1 with a message on any corruption.
Used by tests/train/metrics_test.cpp."""
import json
import struct
import sys


def crc32c(data: bytes) -> int:
    # Bitwise CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, as in RFC 3720 appendix B.4.
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def fields(buf):
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        elif wire == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield num, wire, v


def decode_event(buf):
    ev = {"scalars": {}}
    for num, wire, v in fields(buf):
        if num == 1 and wire == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif num == 2 and wire == 0:
            ev["step"] = v - (1 << 64) if v >= 1 << 63 else v
        elif num == 3 and wire == 2:
            ev["file_version"] = v.decode()
        elif num == 5 and wire == 2:
            for snum, swire, sv in fields(v):
                assert snum == 1 and swire == 2, "Summary.value expected"
                tag, val = None, None
                for vnum, vwire, vv in fields(sv):
                    if vnum == 1 and vwire == 2:
                        tag = vv.decode()
                    elif vnum == 2 and vwire == 5:
                        val = struct.unpack("<f", vv)[0]
                ev["scalars"][tag] = val if val == val and abs(val) != float("inf") else repr(val)
    return ev


def main(path):
    data = open(path, "rb").read()
    i, events = 0, []
    while i < len(data):
        if i + 12 > len(data):
            sys.exit(f"{path}: truncated record header at byte {i}")
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", data[i + 8:i + 12])
        if len_crc != masked(header):
            sys.exit(f"{path}: bad length CRC at byte {i}")
        body = data[i + 12:i + 12 + length]
        if len(body) != length or i + 16 + length > len(data):
            sys.exit(f"{path}: truncated record at byte {i}")
        (body_crc,) = struct.unpack("<I", data[i + 12 + length:i + 16 + length])
        if body_crc != masked(body):
            sys.exit(f"{path}: bad data CRC at byte {i}")
        events.append(decode_event(body))
        i += 16 + length
    print(json.dumps(events))


if __name__ == "__main__":
    main(sys.argv[1])
