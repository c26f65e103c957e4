# D14 at every byte: power fails during each write of an append (record, new state slot,
# zeroing the old slot) and of a prune, after every possible number of bytes of it. After
# each cut the storage is reopened as at boot; the recovered log must verify from the
# genesis anchor (or the acked anchor), keep every committed entry, and go on appending.
# Prints one JSON summary line.
import ujson
import uos
from fieldseal import cbor, fschain as fc
from fieldseal.ports.sim import SimStore, PowerCut
import fsverify

ROOT = "/int"
DEV = "meter-0001"
K1 = bytes(range(32))
T0 = 1767225600


def files():
    out = {}
    for n in uos.listdir(ROOT):
        with open(ROOT + "/" + n, "rb") as f:
            out[n] = f.read()
    return out


def restore(snap):
    for n in uos.listdir(ROOT):
        uos.remove(ROOT + "/" + n)
    for n, b in snap.items():
        with open(ROOT + "/" + n, "wb") as f:
            f.write(b)


def seg_of(c):
    s = c.segment()
    for e in s[1]:
        e[3] = e[3] or b""
    return s


try:
    uos.mkdir(ROOT)
except OSError:
    pass
restore({})
c = fc.Chain(SimStore(ROOT))
c.create(DEV, 1, K1, {"boot": 1})
heads = {0: c.s["h"]}
for i in range(3):
    c.append(T0 + i, 2, cbor.enc({1: i}))
    heads[c.s["n"]] = c.s["h"]
base = files()
h0 = fc.genesis(DEV.encode(), 1)
cases = 0
fails = []
outcomes = {}


def check(tag, want_min, anchor=(0, h0, K1)):
    c2 = fc.Chain(SimStore(ROOT))
    c2.load()
    try:
        n, h, k, fresh = fsverify.verify(DEV, 1, anchor[0], anchor[1], anchor[2], seg_of(c2), lambda i: heads.get(i))
    except fsverify.VerifyError as e:
        fails.append("%s: %s at %d" % (tag, e.name, e.seq))
        return None
    if n < want_min:
        fails.append("%s: lost committed entries (n=%d < %d)" % (tag, n, want_min))
    c2.append(T0 + 100, 5, cbor.enc({}))
    try:
        fsverify.verify(DEV, 1, anchor[0], anchor[1], anchor[2], seg_of(c2), lambda i: heads.get(i))
    except fsverify.VerifyError as e:
        fails.append("%s: after next append: %s at %d" % (tag, e.name, e.seq))
    return n, c2.found


# appends: the write sizes are those of the record and of the slots
payload = cbor.enc({1: "irq"})
rec_len = len(fc.record(4, T0 + 9, 4, payload, bytes(16)))
sizes = (rec_len, len(fc._slot(c.s)) + 8, len(fc._slot(c.s)) + 8)
for k in (1, 2, 3):
    for b in range(sizes[k - 1] + 1):
        restore(base)
        st = SimStore(ROOT)
        c = fc.Chain(st)
        c.load()
        st.arm(k, b)
        try:
            c.append(T0 + 9, 4, payload)
            continue  # fewer writes than k
        except PowerCut:
            pass
        cases += 1
        r = check("append write %d byte %d" % (k, b), 4 if k >= 2 else 3)
        if r:
            key = "w%d:n=%d:%s" % (k, r[0], "recovered" if r[1] and "discarded" in r[1] else ("completed" if r[1] else "clean"))
            outcomes[key] = outcomes.get(key, 0) + 1

# prune to entry 2 (the server acked it): slot, zero old slot, new log file, rename
for k in (1, 2, 3, 4):
    for b in range(0, 400, 7):
        restore(base)
        st = SimStore(ROOT)
        c = fc.Chain(st)
        c.load()
        st.arm(k, b)
        try:
            c.prune(2, heads[2])
            break
        except PowerCut:
            pass
        cases += 1
        check("prune write %d byte %d" % (k, b), 3, (2, heads[2], fc.evolve(fc.evolve(K1))))

print(ujson.dumps({"cases": cases, "failures": fails[:20], "nfail": len(fails), "outcomes": outcomes}))
