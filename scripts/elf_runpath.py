#!/usr/bin/env python3
"""Turns an ELF64 executable's DT_RPATH into DT_RUNPATH in place (what `chrpath -c` does): same
string, only the tag changes. The GPU acceptance run (scripts/device_check.sh) carries binaries built
here whose search path names this machine's LibTorch; as RUNPATH it yields to LD_LIBRARY_PATH, which
there points at the GPU machine's own torch. No packages needed.

usage: elf_runpath.py FILE...
"""
import struct
import sys

DT_NULL, DT_RPATH, DT_RUNPATH, PT_DYNAMIC = 0, 15, 29, 2


def rpath_to_runpath(path):
    with open(path, "r+b") as f:
        ident = f.read(16)
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            raise SystemExit(f"{path}: not a little-endian ELF64 file")
        f.seek(0x20)
        (phoff,) = struct.unpack("<Q", f.read(8))
        f.seek(0x36)
        phentsize, phnum = struct.unpack("<HH", f.read(4))
        changed = 0
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type != PT_DYNAMIC:
                continue
            for off in range(p_offset, p_offset + p_filesz, 16):
                f.seek(off)
                tag, _val = struct.unpack("<qQ", f.read(16))
                if tag == DT_NULL:
                    break
                if tag == DT_RPATH:
                    f.seek(off)
                    f.write(struct.pack("<q", DT_RUNPATH))
                    changed += 1
        return changed


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(f"{p}: {rpath_to_runpath(p)} RPATH entries turned into RUNPATH")
