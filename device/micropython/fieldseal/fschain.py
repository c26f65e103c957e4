# FS-chain v1, the forward-secure evidence log (design/fschain.md, normative), with its
# crash-safe storage in the same formats as Go's fschain.FileStorage (docs/PROTOCOL.md,
# "Storage"), so either implementation can read the other's internal storage:
#   log             records  "fr" | u64 n | u64 t | u16 type | u16 len | payload | tag[16] | u32 crc
#   slot-a, slot-b  "fs1s" | u64 gen | u32 epoch | u64 n | head | key | seal | u64 base_n |
#                   base_h | u32 dropped | u8 len(dev) | dev | u32 crc, then the device state
#                   (wire.DeviceState, shared with the Go agent): "fsx2" | u32 len | CBOR map
#                   | tag[16] | u32 crc, tag = HMAC(H("fs1/state" || K_{n+1}), "fs1/state" ||
#                   lp(D) || u32(e) || u64(gen) || u64(n) || h_n || CBOR)[:16]. The CRC tells
#                   a torn write (slot invalid) from an edit (tag fails: tamper evidence).
#                   Older guards wrote "fsx1" | u32 len | CBOR array | u32 crc: still read.
# CRC-32 is IEEE (binascii.crc32). Append order (fschain.md): 1 record, 2 inactive slot,
# 3 zero the older slot.
from fieldseal.fscrypto import H, hmac, ct_eq
from fieldseal import cbor
from ustruct import unpack_from

try:
    from ubinascii import crc32
except ImportError:  # ports built without MICROPY_PY_BINASCII_CRC32
    def crc32(data, crc=0):
        crc ^= 0xFFFFFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1))
        return crc ^ 0xFFFFFFFF

LOG = "log"
SLOTS = ("slot-a", "slot-b")
MAX_PAYLOAD = 1024
TAMPER = (3, 4, 6, 7, 8, 14, 16, 17, 18, 20)
ROLLBACK_DETECTED, LOG_CORRUPT = 17, 18


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
    return b"".join((b"fs1/entry", u16(len(d)), d, u32(e), u64(n), u64(t), u16(typ), hprev, H(payload)))


def entry_tag(k, msg):
    return hmac(H(b"fs1/mac", k), msg)[:16]


def head(msg, tag):
    return H(b"fs1/head", msg, tag)


def evolve(k):
    return H(b"fs1/evolve", k)


def seal(k_next, d, e, n, h):
    return hmac(H(b"fs1/seal", k_next), b"fs1/seal", u16(len(d)), d, u32(e), u64(n), h)


def step(d, e, n, t, typ, hprev, payload, k):
    """One transition: returns (tag, h_n, K_{n+1}, seal_n) for entry n under key k = K_n."""
    msg = entry_msg(d, e, n, t, typ, hprev, payload)
    tg = entry_tag(k, msg)
    h = head(msg, tg)
    k2 = evolve(k)
    return tg, h, k2, seal(k2, d, e, n, h)


def record(n, t, typ, payload, tag):
    b = b"".join((b"fr", u64(n), u64(t), u16(typ), u16(len(payload)), payload, tag))
    return b + u32(crc32(b) & 0xFFFFFFFF)


def parse_record(buf, off):
    """Return ((n, t, type, payload, tag), next offset) or None for a torn/invalid record.
    buf may be a memoryview: only the payload and the tag are copied."""
    if off + 42 > len(buf) or buf[off] != 0x66 or buf[off + 1] != 0x72:
        return None
    n, t, typ, plen = unpack_from(">QQHH", buf, off + 2)
    end = off + 42 + plen
    if plen > MAX_PAYLOAD or end > len(buf):
        return None
    if crc32(buf[off:end - 4]) & 0xFFFFFFFF != unpack_from(">I", buf, end - 4)[0]:
        return None
    p = off + 22
    return (n, t, typ, bytes(buf[p:p + plen]), bytes(buf[p + plen:p + plen + 16])), end


def _xtag(s, x):
    d = s["d"].encode()
    return hmac(H(b"fs1/state", s["k"]), b"fs1/state", u16(len(d)), d, u32(s["e"]), u64(s["g"]), u64(s["n"]),
                s["h"], x)[:16]


def _slot(s, xkeys=None):
    d = s["d"].encode()
    b = b"".join((b"fs1s", u64(s["g"]), u32(s["e"]), u64(s["n"]), s["h"], s["k"], s["sl"], u64(s["bn"]),
                  s["bh"], u32(s["dr"]), bytes((len(d),)), d))
    if xkeys:
        # wire.DeviceState: key i+1 for xkeys[i]; empty values are left out (as Go's omitempty)
        xs = s["x"]
        x = cbor.enc({i + 1: xs[k] for i, k in enumerate(xkeys) if xs.get(k) not in (None, 0, b"", False, [], {})})
    else:
        x = cbor.enc(s["x"])
    t = b"".join((b"fsx2", u32(len(x)), x, _xtag(s, x)))
    return b"".join((b, u32(crc32(b) & 0xFFFFFFFF), t, u32(crc32(t) & 0xFFFFFFFF)))


def _unslot(b, xkeys=None):
    if b is None or len(b) < 181 or b[0:4] != b"fs1s":
        return None
    dl = b[164]
    end = 165 + dl
    if len(b) < end + 4 or crc32(b[:end]) & 0xFFFFFFFF != int.from_bytes(b[end:end + 4], "big"):
        return None
    i = end + 4
    magic = b[i:i + 4]
    if magic not in (b"fsx1", b"fsx2"):
        return None
    xl = int.from_bytes(b[i + 4:i + 8], "big")
    x = b[i + 8:i + 8 + xl]
    tl = 16 if magic == b"fsx2" else 0
    c = i + 8 + xl + tl
    crc = crc32(b[i:c] if tl else x) & 0xFFFFFFFF
    if len(x) != xl or len(b) < c + 4 or crc != int.from_bytes(b[c:c + 4], "big"):
        return None
    try:
        xs = cbor.dec(x, maxlen=1 << 16, maxitems=1 << 12)
        if xkeys and magic == b"fsx1":
            xs = dict(zip(xkeys, xs))
        elif xkeys:
            xs = {xkeys[k - 1]: v for k, v in xs.items() if isinstance(k, int) and 1 <= k <= len(xkeys)}
    except Exception:
        return None
    g = int.from_bytes
    s = {"g": g(b[4:12], "big"), "e": g(b[12:16], "big"), "n": g(b[16:24], "big"), "h": b[24:56],
         "k": b[56:88], "sl": b[88:120], "bn": g(b[120:128], "big"), "bh": b[128:160],
         "dr": g(b[160:164], "big"), "d": b[165:end].decode(), "x": xs}
    # whole but not authentic: edited in storage (or an older guard's fsx1)
    s["xauth"] = bool(tl) and ct_eq(_xtag(s, x), b[c - 16:c])
    return s


def read_records(f):
    """Stream the records of an open log file: yields ((n, t, type, payload, tag), end
    offset) and stops at the first torn or invalid record. Memory is one record at a time,
    whatever the log holds (D24)."""
    off = 0
    while True:
        hdr = f.read(22)
        if len(hdr) < 22 or hdr[0] != 0x66 or hdr[1] != 0x72:
            return
        n, t, typ, plen = unpack_from(">QQHH", hdr, 2)
        if plen > MAX_PAYLOAD:
            return
        rest = f.read(plen + 20)
        if len(rest) < plen + 20:
            return
        crc = crc32(hdr)
        if crc32(rest[:plen + 16], crc) & 0xFFFFFFFF != unpack_from(">I", rest, plen + 16)[0]:
            return
        off += 42 + plen
        yield (n, t, typ, rest[:plen], rest[plen:plen + 16]), off


class Unprovisioned(Exception):
    pass


class Chain:
    """The device side of FS-chain v1. s is the state; s["x"] belongs to the caller and is
    made durable with every append or save()."""

    def __init__(self, store, cap=12288, xkeys=None):
        self.st = store
        self.xkeys = xkeys  # the caller's fields, stored as a CBOR array in this order
        self.cap = cap  # bytes of log for routine entries; tamper entries may exceed it
        self.s = None
        self.active = 0
        self.slot_len = [0, 0]
        self.log_size = 0
        self.found = None  # what recovery did at load, or None
        self.rolled_back = None  # what only a copied-back or edited slot explains, or None
        self.completed = []  # records recovery completed beyond the slot: (n, t, type, payload)
        self.slot_n = 0  # n of the slot loaded at boot

    # -- provisioning and boot ------------------------------------------------------
    def create(self, dev, epoch, k1, x):
        d = dev.encode()
        h0 = genesis(d, epoch)
        self.s = {"g": 1, "d": dev, "e": epoch, "n": 0, "h": h0, "k": bytes(k1),
                  "sl": seal(k1, d, epoch, 0, h0), "bn": 0, "bh": h0, "dr": 0, "x": x}
        self.st.remove(LOG)
        self.st.remove(LOG + ".new")
        b = _slot(self.s, self.xkeys)
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
            s = _unslot(raw, self.xkeys)
            if s is not None and (best is None or s["g"] > best[1]["g"]):
                best = (i, s)
        if best is None:
            raise Unprovisioned()
        self.active, self.s = best
        self.st.remove(LOG + ".new")  # an unfinished prune; the old log is still whole
        self._recover()

    def _records(self):
        """(entry, end offset) of every whole record in the log, streamed."""
        f = self.st.open(LOG)
        if f is None:
            return
        with f:
            yield from read_records(f)

    def _recover(self):
        """Complete every whole record whose tag verifies (a slot is never trusted over a
        record that verifies). A power cut leaves at most one beyond the slot and only a
        torn one after it: more than one completed, or a whole record that does not continue
        the chain, means a copied-back or edited slot (rolled_back, threat D22)."""
        s = self.s
        d = s["d"].encode()
        slot_n = self.slot_n = s["n"]
        size = self.st.size(LOG)
        good = 0
        whole = 0
        first = None
        records = self._records()
        for (n, t, typ, payload, tag), nxt in records:
            if n <= s["n"]:
                good = nxt
                continue
            ok = n == s["n"] + 1
            if ok:
                # a whole record n_s + 1: committed if its tag verifies under the stored key
                msg = entry_msg(d, s["e"], n, t, typ, s["h"], payload)
                ok = ct_eq(entry_tag(s["k"], msg), tag)
            if not ok:
                # count the whole records left: none can come from a power cut
                first = n
                whole = 1
                for _ in records:
                    whole += 1
                break
            h = head(msg, tag)
            k2 = evolve(s["k"])
            s["n"], s["h"], s["k"], s["sl"] = n, h, k2, seal(k2, d, s["e"], n, h)
            self.save()
            self.completed.append((n, t, typ, payload))
            good = nxt
        records.close()  # the log file is closed before it is truncated
        self.log_size = good
        done = len(self.completed)
        rb = []
        if done > 1:
            rb.append("state slot at entry %d, but entries %d..%d in the log verify: completed them" % (slot_n, slot_n + 1, s["n"]))
        if whole:
            rb.append("discarded %d whole record(s) after entry %d that do not continue the chain (first: n=%d)" % (whole, s["n"], first))
        if good < size:
            self.st.truncate(LOG, good)
            if not rb:
                self.found = "discarded %d bytes of a torn or invalid record after entry %d" % (size - good, s["n"])
        if rb:
            self.rolled_back = "; ".join(rb)
            self.found = None
        elif done:
            self.found = "completed entry %d after a power cut" % s["n"] if self.found is None else \
                "completed entry %d; %s" % (s["n"], self.found)

    # -- writing --------------------------------------------------------------------
    def save(self):
        """Steps 2 and 3: the new state to the inactive slot, then zero the older one."""
        s = self.s
        s["g"] += 1
        b = _slot(s, self.xkeys)
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
        """The unacknowledged entries, streamed. A caller that stops early closes the
        generator (MicroPython does not when it is dropped): that closes the log file."""
        bn = self.s["bn"]
        rs = self._records()
        try:
            for e, _ in rs:
                if e[0] > bn:
                    yield e
        finally:
            rs.close()

    def plan(self, room=None):
        """(first, count, size) of the segment a report carries: the oldest unacknowledged
        entries whose wire.Segment CBOR fits in room bytes — always at least one when there
        is any (a record is at most ~1.1 KiB) — and the size of that CBOR. room=None: every
        unacknowledged entry, exactly the segment of fschain.md.

        One pass over the log that adds up each entry's encoded length; nothing is encoded
        or kept, so memory does not grow with the backlog (D24). A segment cut short is the
        prefix extension of docs/PROTOCOL.md (fschain.VerifyPrefix): n, h_n and seal_n stay
        the current ones (the device can seal only its n), the server's ack anchors at the
        last entry it carried and the next report carries the next part."""
        s = self.s
        # array head, n, h_n and seal_n (bstr of 32: 2 + 32 each); first and the entries'
        # array head depend on the entries taken
        size = 69 + cbor.hlen(s["n"])
        first = s["n"] + 1
        count = 0
        es = self.entries()
        for n, t, typ, payload, tag in es:
            # [n, t, type, payload or null, tag]
            e = (1 + cbor.hlen(n) + cbor.hlen(t) + cbor.hlen(typ)
                 + (cbor.hlen(len(payload)) + len(payload) if payload else 1) + 1 + len(tag))
            if count and room is not None and size + e + cbor.hlen(first) + cbor.hlen(count + 1) > room:
                break
            if not count:
                first = n
            size += e
            count += 1
        es.close()  # the log file is closed now, not when the collector finds it
        return first, count, size + cbor.hlen(first) + cbor.hlen(count)

    def write_segment(self, w, first, count):
        """Encode the segment plan() measured into w (cbor.Buf or bytearray), streamed from
        the log one entry at a time; returns the n of the last entry written (0: none)."""
        s = self.s
        cbor._head(4, 5, w)
        cbor._head(0, first, w)
        cbor._head(4, count, w)
        last = 0
        if count:
            es = self.entries()
            for n, t, typ, payload, tag in es:
                # an empty payload is CBOR null, as Go's encoder writes a nil []byte
                cbor._enc([n, t, typ, payload or None, tag], w)
                last = n
                count -= 1
                if not count:
                    break
            es.close()
        if count:
            raise ValueError("log shorter than planned")
        cbor._enc(s["n"], w)
        cbor._enc(s["h"], w)
        cbor._enc(s["sl"], w)
        return last

    def segment(self):
        """[first, entries, n, h_n, seal_n] of wire.Segment with every unacknowledged entry,
        decoded (tools, tests, the LPWAN profile; reports stream it with write_segment)."""
        s = self.s
        es = [[n, t, typ, payload or None, tag] for n, t, typ, payload, tag in self.entries()]
        return [es[0][0] if es else s["n"] + 1, es, s["n"], s["h"], s["sl"]]

    def head_at(self, a):
        """h_a recomputed from the stored entries (None if a is not in base..n)."""
        s = self.s
        if a == s["bn"]:
            return s["bh"]
        if a < s["bn"] or a > s["n"]:
            return None
        d = s["d"].encode()
        h = s["bh"]
        es = self.entries()
        for n, t, typ, payload, tag in es:
            h = head(entry_msg(d, s["e"], n, t, typ, h, payload), tag)
            if n == a:
                es.close()
                return h
        return None

    def prune(self, a, ha):
        """Forget entries <= a (the server verified them): state first, then the log."""
        s = self.s
        s["bn"], s["bh"] = a, ha
        self.save()
        keep = 0
        off = 0
        for e, nxt in self._records():
            if e[0] <= a:
                keep = nxt
            off = nxt
        self.st.copy(LOG, LOG + ".new", keep, off)
        self.st.rename(LOG + ".new", LOG)
        self.log_size = off - keep
