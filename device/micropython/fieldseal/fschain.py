# FS-chain v1, the forward-secure evidence log (design/fschain.md, normative), with its
# crash-safe storage: an append-only record file and two state slots (A/B).
#
# Storage layout on internal storage (a Store: read/write/append/rename/remove):
#   log      records  u16 len | body | H(body)[:4]
#            body =   u64 n | u64 t | u16 type | u16 plen | payload | tag(16)
#   state.a, state.b  u32 len | CBOR(state) | H(CBOR(state))[:8]; state holds the
#            generation "g", d, e, n, h, k (= K_{n+1}), sl (seal_n), bn, bh and the
#            device's own fields under "x".
# Append order (fschain.md): 1 record, 2 inactive slot, 3 zero the older slot.
from fieldseal.fscrypto import H, hmac, ct_eq
from fieldseal import cbor

LOG = "log"
SLOTS = ("state.a", "state.b")
MAX_PAYLOAD = 1024
TAMPER = (3, 4, 6, 7, 8, 14, 16)


def u16(x):
    return x.to_bytes(2, "big")


def u32(x):
    return x.to_bytes(4, "big")


def u64(x):
    return x.to_bytes(8, "big")


def lp(x):
    return u16(len(x)) + x


def genesis(d, e):
    return H(b"fs1/genesis", lp(d), u32(e))


def entry_msg(d, e, n, t, typ, hprev, payload):
    return b"fs1/entry" + lp(d) + u32(e) + u64(n) + u64(t) + u16(typ) + hprev + H(payload)


def entry_tag(k, msg):
    return hmac(H(b"fs1/mac", k), msg)[:16]


def head(msg, tag):
    return H(b"fs1/head", msg, tag)


def evolve(k):
    return H(b"fs1/evolve", k)


def seal(k_next, d, e, n, h):
    return hmac(H(b"fs1/seal", k_next), b"fs1/seal" + lp(d) + u32(e) + u64(n) + h)


def step(d, e, n, t, typ, hprev, payload, k):
    """One transition: returns (tag, h_n, K_{n+1}, seal_n) for entry n under key k = K_n."""
    msg = entry_msg(d, e, n, t, typ, hprev, payload)
    tg = entry_tag(k, msg)
    h = head(msg, tg)
    k2 = evolve(k)
    return tg, h, k2, seal(k2, d, e, n, h)


def record(n, t, typ, payload, tag):
    body = u64(n) + u64(t) + u16(typ) + u16(len(payload)) + payload + tag
    return u16(len(body)) + body + H(body)[:4]


def parse_record(buf, off):
    """Return ((n, t, type, payload, tag), next offset) or None for a torn/invalid record."""
    if off + 2 > len(buf):
        return None
    ln = int.from_bytes(buf[off:off + 2], "big")
    end = off + 2 + ln
    if ln < 36 or end + 4 > len(buf):
        return None
    body = bytes(buf[off + 2:end])
    if not ct_eq(H(body)[:4], buf[end:end + 4]):
        return None
    plen = int.from_bytes(body[18:20], "big")
    if 36 + plen != ln:
        return None
    return (
        int.from_bytes(body[0:8], "big"),
        int.from_bytes(body[8:16], "big"),
        int.from_bytes(body[16:18], "big"),
        body[20:20 + plen],
        body[20 + plen:],
    ), end + 4


def _slot(s):
    b = cbor.enc(s)
    return u32(len(b)) + b + H(b)[:8]


def _unslot(b):
    if b is None or len(b) < 12:
        return None
    ln = int.from_bytes(b[0:4], "big")
    if ln + 12 > len(b):
        return None
    body = b[4:4 + ln]
    if not ct_eq(H(body)[:8], b[4 + ln:12 + ln]):
        return None
    try:
        s = cbor.dec(body, maxlen=1 << 16, maxitems=1 << 12)
    except Exception:
        return None
    return s if isinstance(s, dict) and "g" in s else None


class Unprovisioned(Exception):
    pass


class Chain:
    """The device side of FS-chain v1. s is the state; s["x"] belongs to the caller and is
    made durable with every append or save()."""

    def __init__(self, store, cap=12288):
        self.st = store
        self.cap = cap  # bytes of log for routine entries; tamper entries may exceed it
        self.s = None
        self.active = 0
        self.slot_len = [0, 0]
        self.log_size = 0
        self.found = None  # what recovery did at load, or None

    # -- provisioning and boot ------------------------------------------------------
    def create(self, dev, epoch, k1, x):
        d = dev.encode()
        h0 = genesis(d, epoch)
        self.s = {"g": 1, "d": dev, "e": epoch, "n": 0, "h": h0, "k": bytes(k1),
                  "sl": seal(k1, d, epoch, 0, h0), "bn": 0, "bh": h0, "dr": 0, "x": x}
        self.st.remove(LOG)
        self.st.remove(LOG + ".new")
        b = _slot(self.s)
        self.st.write(SLOTS[0], b)
        self.st.remove(SLOTS[1])
        self.active = 0
        self.slot_len = [len(b), 0]
        self.log_size = 0

    def load(self):
        best = None
        for i in (0, 1):
            raw = self.st.read(SLOTS[i])
            self.slot_len[i] = len(raw) if raw else 0
            s = _unslot(raw)
            if s is not None and (best is None or s["g"] > best[1]["g"]):
                best = (i, s)
        if best is None:
            raise Unprovisioned()
        self.active, self.s = best
        self.st.remove(LOG + ".new")  # an unfinished prune; the old log is still whole
        self._recover()

    def _recover(self):
        s = self.s
        d = s["d"].encode()
        buf = self.st.read(LOG) or b""
        off = 0
        good = 0
        completed = 0
        while True:
            r = parse_record(buf, off)
            if r is None:
                break
            (n, t, typ, payload, tag), nxt = r
            if n <= s["n"]:
                off = good = nxt
                continue
            if n != s["n"] + 1:
                break
            # a whole record n_s + 1: committed if its tag verifies under the stored key
            msg = entry_msg(d, s["e"], n, t, typ, s["h"], payload)
            if not ct_eq(entry_tag(s["k"], msg), tag):
                break
            h = head(msg, tag)
            k2 = evolve(s["k"])
            s["n"], s["h"], s["k"], s["sl"] = n, h, k2, seal(k2, d, s["e"], n, h)
            self.save()
            completed += 1
            off = good = nxt
        self.log_size = good
        if good < len(buf):
            self.st.truncate(LOG, good)
            self.found = "discarded %d bytes of a torn or invalid record after entry %d" % (len(buf) - good, s["n"])
        elif completed:
            self.found = "completed entry %d" % s["n"]

    # -- writing --------------------------------------------------------------------
    def save(self):
        """Steps 2 and 3: the new state to the inactive slot, then zero the older one."""
        s = self.s
        s["g"] += 1
        b = _slot(s)
        i = 1 - self.active
        self.st.write(SLOTS[i], b)
        old = self.active
        self.active = i
        self.slot_len[i] = len(b)
        if self.slot_len[old]:
            self.st.write(SLOTS[old], bytes(self.slot_len[old]))

    def append(self, t, typ, payload):
        """Append an entry; returns its n, or 0 if the log is full and it was routine (counted)."""
        s = self.s
        if len(payload) > MAX_PAYLOAD:
            raise ValueError("payload too large")
        n = s["n"] + 1
        d = s["d"].encode()
        tg, h, k2, sl = step(d, s["e"], n, t, typ, s["h"], payload, s["k"])
        rec = record(n, t, typ, payload, tg)
        if typ not in TAMPER and self.log_size + len(rec) > self.cap:
            s["dr"] += 1
            self.save()
            return 0
        self.st.append(LOG, rec)  # step 1
        self.log_size += len(rec)
        s["n"], s["h"], s["k"], s["sl"] = n, h, k2, sl
        self.save()  # steps 2 and 3; K_n exists now only in this function's frame
        return n

    # -- reading, acks --------------------------------------------------------------
    def entries(self):
        buf = self.st.read(LOG) or b""
        off = 0
        bn = self.s["bn"]
        while True:
            r = parse_record(buf, off)
            if r is None:
                return
            e, off = r
            if e[0] > bn:
                yield e

    def segment(self):
        """[first, entries, n, h_n, seal_n] of wire.Segment, entries unacknowledged so far."""
        s = self.s
        es = [list(e) for e in self.entries()]
        first = es[0][0] if es else s["n"] + 1
        return [first, es, s["n"], s["h"], s["sl"]]

    def head_at(self, a):
        """h_a recomputed from the stored entries (None if a is not in base..n)."""
        s = self.s
        if a == s["bn"]:
            return s["bh"]
        if a < s["bn"] or a > s["n"]:
            return None
        d = s["d"].encode()
        h = s["bh"]
        for n, t, typ, payload, tag in self.entries():
            h = head(entry_msg(d, s["e"], n, t, typ, h, payload), tag)
            if n == a:
                return h
        return None

    def prune(self, a, ha):
        """Forget entries <= a (the server verified them): state first, then the log."""
        s = self.s
        s["bn"], s["bh"] = a, ha
        self.save()
        buf = self.st.read(LOG) or b""
        off = 0
        keep = 0
        while True:
            r = parse_record(buf, off)
            if r is None:
                break
            e, nxt = r
            if e[0] <= a:
                keep = nxt
            off = nxt
        rest = buf[keep:off]
        self.st.write(LOG + ".new", rest)
        self.st.rename(LOG + ".new", LOG)
        self.log_size = len(rest)
