# Runs every testdata/vectors/fschain/*.json vector (copied to /data) through the guard's
# Python implementation; prints one JSON line per vector: {"file", "ok", "why"}.
import uio
import ujson
import uos
from ubinascii import unhexlify as uh, hexlify
from fieldseal import fschain as fc, cbor
import fsverify
import usys

DATA = (usys.argv[1:] or ["/data"])[0]  # run.mjs copies the vectors to /data; firmware tests name their folder


def hx(b):
    return hexlify(b).decode()


def chain(v):
    d = v["dev"].encode()
    e = v["epoch"]
    k = uh(v["k1"])
    h = fc.genesis(d, e)
    if hx(h) != v["genesis_head"]:
        return "genesis_head"
    if hx(fc.seal(k, d, e, 0, h)) != v["seal_0"]:
        return "seal_0"
    es = []
    sl = fc.seal(k, d, e, 0, h)
    for s in v["steps"] or []:
        p = uh(s["payload"])
        if hx(k) != s["key"]:
            return "key %d" % s["n"]
        msg = fc.entry_msg(d, e, s["n"], s["t"], s["type"], h, p)
        if hx(msg) != s["msg"]:
            return "msg %d" % s["n"]
        tg, h, k, sl = fc.step(d, e, s["n"], s["t"], s["type"], h, p, k)
        for name, got in (("tag", tg), ("head", h), ("next_key", k), ("seal", sl)):
            if hx(got) != s[name]:
                return "%s %d" % (name, s["n"])
        if "record" in s and hx(fc.record(s["n"], s["t"], s["type"], p, tg)) != s["record"]:
            return "record %d" % s["n"]
        r = fc.parse_record(uh(s["record"]), 0)
        if r is None or r[0][0] != s["n"] or r[0][3] != p or r[0][4] != tg:
            return "parse record %d" % s["n"]
        es.append([s["n"], s["t"], s["type"], p or None, tg])  # Go: nil []byte is null
    n = len(es)
    seg = [es[0][0] if es else n + 1, es, n, h, sl]
    if hx(cbor.enc(seg)) != v["segment_cbor"]:
        return "segment_cbor"
    return streamed(v, es, n, h, sl)


class _LogStore:
    # the records of a vector as the guard's internal storage holds them
    def __init__(self, log):
        self.log = log

    def open(self, name):
        return uio.BytesIO(self.log) if name == fc.LOG else None


def streamed(v, es, n, h, sl):
    """What a report carries: the segment measured by Chain.plan and streamed from the
    stored records by Chain.write_segment into a buffer sized in advance — Go's bytes too,
    whole and cut one entry short (the prefix the decoded encoder writes)."""
    c = fc.Chain(_LogStore(b"".join(fc.record(e[0], e[1], e[2], e[3] or b"", e[4]) for e in es)))
    c.s = {"n": n, "h": h, "sl": sl, "bn": 0}
    first, count, size = c.plan()
    w = cbor.Buf(size)
    c.write_segment(w, first, count)
    if count != n or w.i != size or hx(w.b) != v["segment_cbor"]:
        return "streamed segment differs from segment_cbor"
    if count > 1:
        first, count, size = c.plan(size - 1)
        w = cbor.Buf(size)
        c.write_segment(w, first, count)
        if count != n - 1 or bytes(w.b) != cbor.enc([first, es[:count], n, h, sl]):
            return "streamed segment cut at %d bytes: %d entries, not %d" % (len(w.b), count, n - 1)
    return None


def verify(v):
    raw = uh(v["segment_cbor"])
    seg = cbor.dec(raw, maxitems=1 << 16, maxlen=1 << 20)
    if cbor.enc(seg) != raw:
        return "segment_cbor does not round-trip"
    for e in seg[1]:
        if e[3] is None:
            e[3] = b""
    a = v["anchor"]
    known = v.get("known_heads") or {}

    def head_at(n):
        x = known.get(str(n))
        return uh(x) if x else None

    w = v["want"]
    try:
        n, h, k, fresh = fsverify.verify(v["dev"], v["epoch"], a["n"], uh(a["head"]), uh(a["next_key"]), seg, head_at)
    except fsverify.VerifyError as e:
        if e.name != w["error"] or e.seq != w.get("seq", e.seq):
            return "got %s at %d, want %s at %s" % (e.name, e.seq, w["error"], w.get("seq"))
        return None
    if w["error"]:
        return "verified, want %s" % w["error"]
    wa = w["anchor"]
    if n != wa["n"] or hx(h) != wa["head"] or hx(k) != wa["next_key"]:
        return "anchor"
    if fresh != (w.get("fresh") or []):
        return "fresh %r" % fresh
    return None


for name in sorted(uos.listdir(DATA)):
    if not name.endswith(".json"):
        continue
    with open(DATA + "/" + name) as f:
        v = ujson.load(f)
    try:
        why = chain(v) if v["kind"] == "chain" else verify(v)
    except Exception as e:
        why = "%s: %s" % (type(e).__name__, e)
    print(ujson.dumps({"file": name, "ok": why is None, "why": why or ""}))
