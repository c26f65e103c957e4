# The LPWAN profile on the guard (docs/PROTOCOL.md, "LPWAN profile"; Go: wire/lpwan.go):
# frames of at most 51 bytes for a LoRaWAN/NB-IoT modem, the same bytes as Go's
# (testdata/vectors/lpwan). Meter(d).uplink() gives one round's frames (the oldest entries not
# sent yet, at most max_frames frames in all, then a status); downlink(frame) applies an ack or
# a token by the downlink rules.
import ustruct
from fieldseal import cose
from fieldseal.fscrypto import hmac, ct_eq

STATUS, ENTRY, ACK, TOKEN = 0x01, 0x02, 0x81, 0x82
ACK_REQUEST, ENTRIES_AHEAD = 0x01, 0x02
RESEND, TOKEN_FOLLOWS, REJECTED = 0x01, 0x02, 0x04
MAX_FRAME, MAC_SIZE, CHUNK = 51, 8, 37
ACTIONS = (None, "service", "clear", "config")
ACK_EVERY, MAX_UNACKED = 24, 32
# Frames per round, status included (wire.LPRoundFrames): 8 frames take at most 5.6 s on air
# at SF10 (EU868 DR2), within the 1 % duty cycle of a 15-minute report slot (9 s); at SF12
# (DR0) a board passes max_frames=3 (8.4 s). A backlog goes out over several rounds; a
# round's memory does not grow with it.
ROUND_FRAMES = 8


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


def entry_frames(key, dev, epoch, n, t, typ, payload, tag, first=0, limit=128):
    """Entry n's fragments first, first+1, … (at most limit of them), sealed."""
    data = ustruct.pack(">IH", t, typ) + bytes(payload) + bytes(tag)
    out = []
    i = first
    while i * CHUNK < len(data) and len(out) < limit:
        part = data[i * CHUNK:(i + 1) * CHUNK]
        last = (i + 1) * CHUNK >= len(data)
        out.append(seal(key, dev, epoch, ustruct.pack(">BIB", ENTRY, n, i | (0x80 if last else 0)) + part))
        i += 1
    return out


class Meter:
    """One device's LPWAN session: which entries went out, when to ask for an ack.

    A round carries at most max_frames frames (ROUND_FRAMES by default, the status
    included): the oldest entries not sent yet, cut at the budget, possibly inside an entry
    (its next fragment opens the next round). The status still claims the device's n and
    seal: the server verifies the entries it holds as a prefix (docs/PROTOCOL.md, "Backlog
    in chunks") and answers with an ack flagged resend, anchored at the last entry verified."""

    def __init__(self, d, max_frames=ROUND_FRAMES):
        if max_frames < 2:
            raise ValueError("a round needs room for an entry frame and the status")
        self.d = d
        self.max_frames = max_frames
        self.sent_n = 0  # the newest entry whose fragments all went out
        self.sent_i = 0  # fragments of entry sent_n + 1 that went out (a round ended inside it)
        self.rounds = 0

    def uplink(self):
        """The frames of one round: the oldest entries not sent yet within the budget, then
        a status (rseq persisted). Memory: the round's frames and one entry, whatever the
        log holds (D24)."""
        d = self.d
        s = d.chain.s
        x = d.x
        key, dev, e = x["R"], s["d"], s["e"]
        room = self.max_frames - 1  # the status takes one
        frames = []
        tamper = False
        unacked = 0
        es = d.chain.entries()  # streamed: nothing of the log is kept but the frames sent
        for n, t, typ, payload, tag in es:
            unacked += 1
            if n > self.sent_n and len(frames) < room:
                if n != self.sent_n + 1:
                    self.sent_i = 0  # pruned past a partly sent entry: start the next afresh
                fs = entry_frames(key, dev, e, n, t, typ, payload, tag, self.sent_i, room - len(frames))
                frames.extend(fs)
                tamper = tamper or typ in (3, 4, 6, 7, 8, 14, 16) or typ >= 17
                if fs[-1][5] & 0x80:  # its last fragment went out
                    self.sent_n, self.sent_i = n, 0
                else:
                    self.sent_n, self.sent_i = n - 1, self.sent_i + len(fs)
            elif len(frames) >= room and unacked >= MAX_UNACKED:
                break  # the budget is spent and the ack will be asked for: read no further
        es.close()  # the log file is closed now, not when the collector finds it
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

    def mark(self):
        """Where the next round starts; rewind(mark) puts back what a failed round took."""
        return self.sent_n, self.sent_i

    def rewind(self, mark):
        self.sent_n, self.sent_i = mark

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
        if self.sent_n < n or (flags & RESEND and self.sent_n > n):
            # the server lacks what follows its anchor: send it again, from its first fragment.
            # At sent_n == n it holds every entry sent whole; a round cut inside the next
            # entry goes on with that entry's remaining fragments (the server keeps them).
            self.sent_n, self.sent_i = n, 0
        return "ok"
