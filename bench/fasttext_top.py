#!/usr/bin/env python3
"""fastText's own top-K for every query line, as class indices.

    fasttext_top.py MODEL.bin QUERIES.txt K > TOP.txt

Runs `fasttext predict MODEL.bin QUERIES.txt K` and maps each predicted
label to its index in the model's class order (the order of the labels in
the model's dictionary, which is the order adasm_hs_load_fasttext and the
tool's --method hs use). One line per query: up to K indices, best first
(fastText prints fewer when the rest score below its threshold).
Standard library only; reads just the dictionary of the .bin (v12).
"""
import struct
import subprocess
import sys


def labels_in_order(path):
    with open(path, "rb") as f:
        b = f.read(1 << 26)  # the dictionary comes first; 64 MB is plenty
    magic, version = struct.unpack_from("<ii", b, 0)
    if magic != 793712314 or version != 12:
        sys.exit(f"{path}: not a fastText 0.9 .bin (magic/version)")
    off = 8 + 12 * 4 + 8  # magic, version, 12 int32 args, double t
    size, nwords, nlabels = struct.unpack_from("<iii", b, off)
    off += 12 + 16  # sizes, ntokens, pruneidx_size
    names = []
    for _ in range(size):
        end = b.index(b"\0", off)
        names.append(b[off:end].decode("utf-8", "replace"))
        off = end + 1 + 8 + 1  # NUL, count, type
    return {name: i for i, name in enumerate(names[nwords:nwords + nlabels])}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model, queries, k = sys.argv[1], sys.argv[2], sys.argv[3]
    index = labels_in_order(model)
    out = subprocess.run(["fasttext", "predict", model, queries, k],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        print(" ".join(str(index[t]) for t in line.split()))


if __name__ == "__main__":
    main()
