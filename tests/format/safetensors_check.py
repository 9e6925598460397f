"""An independent reader of the safetensors format (the spec, in plain
Python), used to check that moonrl's checkpoints are what PyTorch's
safetensors.torch.load_file expects: u64 little-endian header length, a
JSON header of {name: {dtype, shape, data_offsets}} plus __metadata__ of
string values, then contiguous little-endian data.

usage: safetensors_check.py FILE EXPECTED.json REWRITTEN
EXPECTED.json maps tensor names to {"shape": [...], "values": [...]}.
It also writes FILE back out as REWRITTEN the way another writer may lay it
out (tensors in another order, an unpadded header, the metadata kept), for
moonrl to load back.  Prints TAP (the plan comes from the caller's count)."""
import json
import math
import struct
import sys

path, expected_path, rewritten = sys.argv[1], sys.argv[2], sys.argv[3]
expected = json.load(open(expected_path))
raw = open(path, "rb").read()
n = 0
failed = 0


def ok(cond, what):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n, what))


(hlen,) = struct.unpack("<Q", raw[:8])
ok(8 + hlen <= len(raw), "header length %d fits the %d-byte file" % (hlen, len(raw)))
header = json.loads(raw[8:8 + hlen].decode("utf-8"))
data = raw[8 + hlen:]
meta = header.pop("__metadata__", {})
ok(all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()),
   "__metadata__ maps strings to strings (%d keys)" % len(meta))
ends = sorted((t["data_offsets"][0], t["data_offsets"][1]) for t in header.values())
ok(ends[0][0] == 0 and all(a[1] == b[0] for a, b in zip(ends, ends[1:])) and ends[-1][1] == len(data),
   "tensors tile the data region exactly (what the reference loader demands)")
for name, want in expected.items():
    t = header.get(name)
    ok(t is not None, "tensor %s present" % name)
    if t is None:
        continue
    ok(t["dtype"] == "F32", "%s is F32" % name)
    ok(t["shape"] == want["shape"], "%s shape %s" % (name, t["shape"]))
    b, e = t["data_offsets"]
    vals = struct.unpack("<%df" % ((e - b) // 4), data[b:e])
    close = len(vals) == len(want["values"]) and all(
        math.isclose(a, w, rel_tol=1e-6, abs_tol=1e-7) for a, w in zip(vals, want["values"]))
    ok(close, "%s values match the policy's parameters" % name)
# Write it back: reverse name order, no header padding.
names = sorted(header, reverse=True)
out_header, blob, off = {}, b"", 0
for name in names:
    b, e = header[name]["data_offsets"]
    out_header[name] = {"dtype": "F32", "shape": header[name]["shape"], "data_offsets": [off, off + e - b]}
    blob += data[b:e]
    off += e - b
out_header["__metadata__"] = meta
hdr = json.dumps(out_header).encode("utf-8")
open(rewritten, "wb").write(struct.pack("<Q", len(hdr)) + hdr + blob)
print("1..%d" % n)
sys.exit(1 if failed else 0)
