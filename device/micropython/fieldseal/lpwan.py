# The LPWAN profile on the guard (docs/PROTOCOL.md, "LPWAN profile"; Go: wire/lpwan.go):
# frames of at most 51 bytes for a LoRaWAN/NB-IoT modem, the same bytes as Go's
# (testdata/vectors/lpwan). uplink(d) gives one round's frames (new entries, then a status);
# downlink(d, frame) applies an ack or a token by the downlink rules.
import ustruct
from fieldseal import cose
from fieldseal.fscrypto import hmac, ct_eq

STATUS, ENTRY, ACK, TOKEN = 0x01, 0x02, 0x81, 0x82
ACK_REQUEST, ENTRIES_AHEAD = 0x01, 0x02
RESEND, TOKEN_FOLLOWS, REJECTED = 0x01, 0x02, 0x04
MAX_FRAME, MAC_SIZE, CHUNK = 51, 8, 37
ACTIONS = (None, "service", "clear", "config")
ACK_EVERY, MAX_UNACKED = 24, 32


def mac(key, dev, epoch, body):
    label = b"fs1/lp-down" if body and body[0] >= 0x80 else b"fs1/lp-up"
    d = dev.encode()
    return hmac(key, label, ustruct.pack(">H", len(d)), d, ustruct.pack(">I", epoch), body)[:MAC_SIZE]


def seal(key, dev, epoch, body):
    return bytes(body) + mac(key, dev, epoch, body)


def open_frame(frame, key, dev, epoch):
    """The body of a frame whose MAC verifies; raises cose.BadMessage otherwise."""
    if len(frame) > MAX_FRAME:
        raise cose.BadMessage("oversize")
    if len(frame) < 1 + MAC_SIZE:
        raise cose.BadMessage("malformed")
    body = frame[:-MAC_SIZE]
    if not ct_eq(mac(key, dev, epoch, body), frame[-MAC_SIZE:]):
        raise cose.BadMessage("bad-mac")
    return body


def status(key, dev, epoch, ctl, rseq, boot, t, state, meas, bad, man_version, root, n, seal_n, litres, flow):
    body = ustruct.pack(">BBIHIBBH", STATUS, ctl, rseq, boot, t, state, meas | (min(bad, 63) << 2), man_version)
    body += bytes(root[:4]) + ustruct.pack(">I", n) + bytes(seal_n[:8]) + ustruct.pack(">IB", litres, flow)
    return seal(key, dev, epoch, body)


def entry_frames(key, dev, epoch, n, t, typ, payload, tag):
    data = ustruct.pack(">IH", t, typ) + bytes(payload) + bytes(tag)
    out = []
    i = 0
    while i * CHUNK < len(data):
        part = data[i * CHUNK:(i + 1) * CHUNK]
        last = (i + 1) * CHUNK >= len(data)
        out.append(seal(key, dev, epoch, ustruct.pack(">BIB", ENTRY, n, i | (0x80 if last else 0)) + part))
        i += 1
    return out


class Meter:
    """One device's LPWAN session: which entries went out, when to ask for an ack."""

    def __init__(self, d):
        self.d = d
        self.sent_n = 0
        self.rounds = 0

    def uplink(self):
        """The frames of one round: entries not sent yet, then a status (rseq persisted)."""
        d = self.d
        s = d.chain.s
        x = d.x
        key, dev, e = x["R"], s["d"], s["e"]
        frames = []
        tamper = False
        unacked = 0
        # streamed from the log (D24): only the frames of entries not sent yet are kept
        for n, t, typ, payload, tag in d.chain.entries():
            unacked += 1
            if n <= self.sent_n:
                continue
            frames.extend(entry_frames(key, dev, e, n, t, typ, payload, tag))
            self.sent_n = n
            tamper = tamper or typ in (3, 4, 6, 7, 8, 14, 16) or typ >= 17
        x["rseq"] += 1
        d.chain.save()  # persisted before sending
        self.rounds += 1
        ctl = ENTRIES_AHEAD if frames else 0
        if tamper or self.rounds % ACK_EVERY == 0 or unacked >= MAX_UNACKED:
            ctl |= ACK_REQUEST
        meas = 2 if not d.checked else (1 if d.bad else 0)
        r = d.reading or {}
        frames.append(status(key, dev, e, ctl, x["rseq"], x["boot"] & 0xFFFF, d.port.time(), d.flags() & 0xFF, meas,
                             len(d.bad), d.man.version & 0xFFFF, d.man.root or bytes(4), s["n"], s["sl"],
                             r.get(1, 0), r.get(2, 0)))
        return frames

    def downlink(self, frame):
        """Apply an LPWAN ack or token; returns "ok", "stale", "rejected" or the rejection
        name (logged as bad-downlink, capped as for COSE downlinks)."""
        d = self.d
        s = d.chain.s
        x = d.x
        try:
            body = open_frame(frame, x["T"], s["d"], s["e"])
        except cose.BadMessage as err:
            return d._bad(err.args[0])
        if body[0] == TOKEN:
            if len(body) < 26 or body[17] == 0 or body[17] >= len(ACTIONS):
                return d._bad("malformed")
            until, expires = ustruct.unpack(">II", body[18:26])
            act = ACTIONS[body[17]]
            args = {}
            a = body[26:]
            if act == "service" and len(a) == 4:
                args[6] = ustruct.unpack(">I", a)[0]
            elif act == "config" and len(a) == 8:
                args[4], args[5] = ustruct.unpack(">II", a)
            elif len(a) != 0:
                return d._bad("malformed")
            return d.apply_token({1: s["d"], 2: s["e"], 3: bytes(body[1:17]), 4: act, 5: until, 6: expires, 7: args})
        if body[0] != ACK or len(body) != 18:
            return d._bad("malformed")
        acked, n = ustruct.unpack(">II", body[1:9])
        head, flags = body[9:17], body[17]
        if acked < 1 or acked > x["rseq"]:
            return d._bad("unsent-rseq")
        if acked < x["rseq"]:
            return "stale"
        c = d.chain
        ha = c.head_at(n)
        if ha is None and n > c.s["n"]:
            return d._bad("anchor-ahead")
        if ha is not None and not ct_eq(ha[:8], head):
            return d._bad("anchor-mismatch")
        if flags & REJECTED:
            return "rejected"
        x["ack"] = acked
        extra = x["bd"] - 16
        x["bd"] = 0
        if extra > 0:
            d.log(16, {1: "%d more rejected downlinks not logged" % extra})
        if ha is not None and n > c.s["bn"]:
            c.prune(n, ha)
        else:
            c.save()
        if flags & RESEND or self.sent_n < n:
            self.sent_n = n  # the server lacks what follows its anchor: send it again
        return "ok"
