# Runs the storage vectors of testdata/vectors/fschain/storage (copied to /data) through the
# guard's FS-chain storage code; prints one JSON line per vector: {"file", "ok", "why"}.
#   slot-*     decode the slot (fields, tag), re-encode it byte for byte, edited slot's tag fails
#   recover-*  open the storage as at boot: records completed, rollback or not, state tag
import ujson
import uos
from ubinascii import unhexlify as uh, hexlify
from fieldseal import fschain as fc, cbor
from fieldseal.device import XKEYS
from fieldseal.store import FileStore
import usys

DATA = (usys.argv[1:] or ["/data"])[0]  # run.mjs copies the vectors to /data; firmware tests name their folder


def hx(b):
    return hexlify(b).decode()


ROOT = DATA + "/.store"  # a writable folder beside the vectors


def store_with(files):
    """A FileStore (the guard's own) holding exactly files."""
    try:
        uos.mkdir(ROOT)
    except OSError:
        pass
    for n in uos.listdir(ROOT):
        uos.remove(ROOT + "/" + n)
    for n, b in files.items():
        with open(ROOT + "/" + n, "wb") as f:
            f.write(b)
    return FileStore(ROOT)


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
    # an older guard's slot: "fsx1" | len | CBOR array in XKEYS order | crc(CBOR), no tag
    raw = uh(v["slot"])
    i = raw.find(b"fsx2")
    arr = cbor.enc([x.get(k) for k in XKEYS[:15]])
    old = raw[:i] + b"fsx1" + fc.u32(len(arr)) + arr + fc.u32(fc.crc32(arr) & 0xFFFFFFFF)
    o = fc._unslot(old, XKEYS)
    if o is None or o["xauth"] is not False or o["x"]["rseq"] != f["rseq"]:
        return "fsx1 slot: %r" % (o and (o["xauth"], o["x"].get("rseq")))
    return None


def recover(v):
    st = store_with({"log": uh(v["log"]), "slot-a": uh(v["slot_a"]), "slot-b": uh(v["slot_b"])})
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


for name in sorted(uos.listdir(DATA)):
    if not name.endswith(".json"):
        continue
    with open(DATA + "/" + name) as f:
        v = ujson.load(f)
    try:
        why = slot(v) if v["kind"] == "slot" else recover(v)
    except Exception as e:
        why = "%s: %s" % (type(e).__name__, e)
    print(ujson.dumps({"file": name, "ok": why is None, "why": why or ""}))
