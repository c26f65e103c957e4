# Runs the storage vectors of testdata/vectors/fschain/storage (copied to /data) through the
# guard's FS-chain storage code; prints one JSON line per vector: {"file", "ok", "why"}.
#   slot-*     decode the slot (fields, tag), re-encode it byte for byte, edited slot's tag fails
#   recover-*  open the storage as at boot: records completed, rollback or not, state tag
import ujson
import uos
from ubinascii import unhexlify as uh, hexlify
from fieldseal import fschain as fc
from fieldseal.device import XKEYS


def hx(b):
    return hexlify(b).decode()


class Mem:
    def __init__(self, files):
        self.f = dict(files)

    def read(self, name):
        return self.f.get(name)

    def write(self, name, data):
        self.f[name] = bytes(data)

    def append(self, name, data):
        self.f[name] = (self.f.get(name) or b"") + bytes(data)

    def truncate(self, name, n):
        self.f[name] = (self.f.get(name) or b"")[:n]

    def rename(self, a, b):
        self.f[b] = self.f.pop(a)

    def remove(self, name):
        self.f.pop(name, None)

    # the streaming interface of FileStore (open, size, copy)
    def open(self, name):
        import uio

        d = self.f.get(name)
        return None if d is None else uio.BytesIO(d)

    def size(self, name):
        return len(self.f.get(name) or b"")

    def copy(self, name, dst, start, end):
        self.f[dst] = (self.f.get(name) or b"")[start:end]


def slot(v):
    s = fc._unslot(uh(v["slot"]), XKEYS)
    if s is None:
        return "slot does not decode"
    if not s["xauth"]:
        return "tag of the device state does not verify"
    for k, want in (("g", v["gen"]), ("n", v["n"]), ("bn", v["base_n"]), ("dr", v["dropped"])):
        if s[k] != want:
            return "%s = %r, want %r" % (k, s[k], want)
    for k, want in (("h", v["head"]), ("k", v["key"]), ("sl", v["seal"]), ("bh", v["base_h"])):
        if hx(s[k]) != want:
            return "%s differs" % k
    x = s["x"]
    f = v["fields"]
    for k in ("boot", "rseq", "ack", "fl", "svc", "civ", "mv", "cv", "lc", "bd", "seen"):
        if x.get(k) != f[k]:
            return "field %s = %r, want %r" % (k, x.get(k), f[k])
    if hx(x["nonce"]) != f["nonce"] or x["sum"][1] != f["sum_first_n"] or x["svw"][1] != f["svw_boot"]:
        return "nonce, sum or svw differ"
    if hx(fc._slot(s, XKEYS)) != v["slot"]:
        return "re-encoded slot differs"
    e = fc._unslot(uh(v["slot_edited"]), XKEYS)
    if e is None or e["xauth"]:
        return "edited slot: %s" % ("does not decode" if e is None else "tag verifies")
    return None


def recover(v):
    st = Mem({"log": uh(v["log"]), "slot-a": uh(v["slot_a"]), "slot-b": uh(v["slot_b"])})
    c = fc.Chain(st, 1 << 20, XKEYS)
    c.load()
    w = v["want"]
    done = [r[0] for r in c.completed]
    if done != w["completed"]:
        return "completed %r, want %r" % (done, w["completed"])
    if bool(c.rolled_back) != w["rolled_back"]:
        return "rolled back %r, want %r" % (c.rolled_back, w["rolled_back"])
    if c.s.get("xauth", True) != w["state_authentic"]:
        return "state authentic %r" % c.s.get("xauth")
    if c.slot_n != w["slot_n"]:
        return "slot_n %d" % c.slot_n
    return None


for name in sorted(uos.listdir("/data")):
    if not name.endswith(".json"):
        continue
    with open("/data/" + name) as f:
        v = ujson.load(f)
    try:
        why = slot(v) if v["kind"] == "slot" else recover(v)
    except Exception as e:
        why = "%s: %s" % (type(e).__name__, e)
    print(ujson.dumps({"file": name, "ok": why is None, "why": why or ""}))
