# The guard's state machine: provisioning, boot measurement, scheduled checks, tamper
# inputs, policy, evidence log, reports, acks and tokens. Ports supply the hardware.
import ujson
import ubinascii
import uos
import usys
import utime
from fieldseal import cbor, cose, fschain
from fieldseal.check import Manifest, measure, VerifiedFS, clip
from fieldseal.fscrypto import ct_eq

BOOT, CHECK_OK, CHECK_FAIL, COVER_OPEN, COVER_CLOSE, MAGNET, REFUSED, ERASED = 1, 2, 3, 4, 5, 6, 7, 8
SERVICE_BEGIN, SERVICE_END, TAMPER_CLEARED, MANIFEST_UPDATE, REGISTER, OVERFLOW = 9, 10, 11, 12, 13, 14
RECOVERED, BAD_DOWNLINK, ROLLBACK_DETECTED, LOG_CORRUPT = 15, 16, 17, 18
BOOT_FAILED, REPEAT = 19, 20
# D24: cover openings logged one by one between two reports; further ones are counted (count,
# first and last time) and go out as one repeat entry with the next report, so a flood (a
# magnet and patience) can neither fill storage nor hide.
REPEAT_FREE = 8
# heap left free beside a report's buffer: a log record being read (≤ 1.1 KiB), the sender's
# packet headers and socket buffers, the answer and its verification
REPORT_RESERVE = 6144

# report state flags (wire.State*)
F_MISMATCH, F_COVER_NOW, F_COVER_WAS, F_MAGNET, F_SERVICE, F_REFUSING, F_OVERFLOW, F_LATCHED = (
    1, 2, 4, 8, 16, 32, 64, 128)
LATCHED = F_COVER_WAS | F_MAGNET | F_LATCHED  # cleared only by a clear token (D10)
# the device's own state, kept in the state slots as wire.DeviceState: key i+1 is XKEYS[i]
# (sum: latched tamper summary, svw: service window bounds, seen: newest entry accounted for)
XKEYS = ("boot", "rseq", "ack", "nonce", "fl", "used", "svc", "civ", "riv", "mv", "cv", "lc", "R", "T", "bd",
         "sum", "svw", "seen")
XDEFAULTS = {"boot": 0, "rseq": 0, "ack": 0, "nonce": b"", "fl": 0, "used": [], "svc": 0, "civ": 0, "riv": 0,
             "mv": 0, "cv": False, "lc": 0, "bd": 0, "sum": None, "svw": None, "seen": 0}
MAX_TOKENS = 32
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"  # fschain.md D
MAX_BAD = 16  # files listed in one check-fail entry (payload ≤ 1024 bytes)
MAX_BAD_DOWNLINK = 16  # bad-downlink entries logged between two good acks


def unhex(s):
    return ubinascii.unhexlify(s)


def latch_for(typ, p):
    """What a tamper-class entry latches (Go: agent.latchFor; the code-mismatch bit aside)."""
    if typ == COVER_OPEN:
        return 0 if p.get(1) == "service" else F_COVER_WAS | F_LATCHED
    if typ == MAGNET:
        return F_MAGNET | F_LATCHED
    if typ in (CHECK_FAIL, REFUSED, ERASED, ROLLBACK_DETECTED, LOG_CORRUPT):
        return F_LATCHED
    return 0


def what_of(typ, p):
    """The summary text of a tamper entry, as Go's fschain.Summary writes it after the name."""
    v = p.get(1)
    if typ == CHECK_FAIL:
        return ", ".join("%s %s" % (b[0], b[1]) for b in v or ()) or "mismatch"
    if typ == COVER_OPEN:
        return "seen by " + (v or "-")
    if typ == MAGNET:
        return "strength %d" % (v or 0)
    if typ == REFUSED:
        return v + (" (%s)" % p[2] if p.get(2) else "")
    if typ == ERASED:
        return ", ".join(v or ())
    return v if isinstance(v, str) else ""


def account(x, n, t, typ, p):
    """Apply entry n to the device state: latches, the tamper summary, spent tokens. For
    every entry logged, and at boot for entries recovery completed beyond the slot (D22)."""
    if n <= x["seen"]:
        return
    x["seen"] = n
    f = latch_for(typ, p)
    if f:
        x["fl"] |= f
        sm = x["sum"]
        if not sm:
            sm = x["sum"] = {1: n, 2: typ, 3: t, 4: what_of(typ, p)[:120], 5: {}, 6: n}
        c = sm.setdefault(5, {})
        c[typ] = c.get(typ, 0) + 1
        sm[6] = n
    if typ == TAMPER_CLEARED:
        x["fl"] &= ~LATCHED
        x["sum"] = None
    if typ in (TAMPER_CLEARED, SERVICE_BEGIN) and isinstance(p.get(1), bytes):
        if not any(ct_eq(u[0], p[1]) for u in x["used"]):
            x["used"].append([p[1], 0])


class Device:
    def __init__(self, port):
        self.port = port
        self.st = port.store
        self.ext = port.EXT
        self.chain = fschain.Chain(port.store, port.LOG_CAP, XKEYS)
        self.man = None
        self.kept = {}
        self.bad_kinds = {}
        self.bad = []
        self.refused = set()
        self.files = 0
        self.checked = False
        self.seen_ev = 0
        self.next_check = 0
        self.next_report = 0
        self.partial = False  # the last report carried only the oldest part of the backlog
        self._last = 0  # n of the last entry the report being written carries
        self.svc_ticks = None  # monotonic end of the open service window (this boot only)
        self.reading = None  # the application may set {1: litres, 2: flags}
        self.rp = [0, 0, 0, 0]  # cover openings: [logged since the last report, counted, first t, last t]

    @property
    def x(self):
        return self.chain.s["x"]

    # -- state and secrets ------------------------------------------------------------
    def _load(self):
        raw = self.st.read("bundle.json")
        bundle = ujson.loads(raw) if raw else None
        try:
            self.chain.load()
        except fschain.Unprovisioned:
            if bundle is None:
                raise
            self._provision(bundle)
            return
        s = self.chain.s
        if bundle is not None:
            if bundle["epoch"] > s["e"] or bundle["device"] != s["d"]:
                self._provision(bundle)
                return
            self.st.remove("bundle.json")  # K_1 must not outlive the first entry's key
        x = s["x"]
        for k in XDEFAULTS:
            if k not in x:
                x[k] = XDEFAULTS[k]
        c = self.chain
        auth = s.get("xauth", True)
        if auth:
            done = c.completed
        else:
            # edited in storage: account again for every entry still stored (D26)
            x["seen"] = s["bn"]
            done = [e[:4] for e in c.entries()]
        for n, t, typ, payload in done:
            try:
                account(x, n, t, typ, cbor.dec(payload) or {})
            except Exception:
                pass
        if c.rolled_back:
            self.log(ROLLBACK_DETECTED, {1: c.rolled_back, 2: c.slot_n, 3: s["n"]})
        elif c.found:
            self.log(RECOVERED, {1: c.found})
        if not auth:
            self.log(ROLLBACK_DETECTED, {1: "device state in the state slot fails its tag: edited in storage"})

    def _provision(self, b):
        dev = b["device"]
        if not 1 <= len(dev) <= 64 or any(c not in _ID_CHARS for c in dev):
            raise ValueError("bundle: invalid device id")
        for k in ("chain_key", "uplink_key", "downlink_key"):
            if len(b[k]) != 64:
                raise ValueError("bundle: %s is not 32 bytes" % k)
        root = b.get("topic_root")
        if root:  # absent or empty: the default root, as wire.Bundle
            from fieldseal.uplink import check_topic_root

            check_topic_root(root, "bundle")  # before anything is created: the bundle stays
        x = {"boot": 0, "rseq": 0, "ack": 0, "nonce": b"", "fl": 0, "used": [], "svc": 0,
             "civ": 0, "riv": 0, "mv": b.get("manifest_version", 0), "cv": False, "lc": 0,
             "R": unhex(b["uplink_key"]), "T": unhex(b["downlink_key"]), "bd": 0, "sum": None, "svw": None,
             "seen": 0}
        self.chain.create(b["device"], b["epoch"], unhex(b["chain_key"]), x)
        # where fieldseal.uplink reports to, and under which MQTT topic root (absent: the default)
        urls = {k: b[k] for k in ("mqtt", "http", "topic_root") if b.get(k)}
        if urls:
            self.st.write("uplink.json", ujson.dumps(urls))
        self.st.remove("bundle.json")
        self.port.clear_latch()  # arm the hardware latch (e.g. write the RTC backup secret)

    def _manifest(self):
        m = Manifest.frozen()
        raw = self.st.read("manifest.cose")
        if raw:
            try:
                n = Manifest.from_cbor(cose.sign1_payload(raw))
                if n.product == m.product and n.version > m.version:
                    m = n
            except Exception:
                pass
        return m

    # -- logging ----------------------------------------------------------------------
    def log(self, typ, payload):
        b = cbor.enc(payload)
        if len(b) > fschain.MAX_PAYLOAD:
            # lists of findings (check-fail, erased) lose their tail; anything else its text
            lst = payload.get(1)
            while isinstance(lst, list) and len(lst) > 1 and len(b) > fschain.MAX_PAYLOAD:
                lst.pop()
                b = cbor.enc(payload)
            if len(b) > fschain.MAX_PAYLOAD:
                for k in payload:
                    if isinstance(payload[k], str):
                        payload[k] = payload[k][:120]
                b = cbor.enc(payload)
        t = self.port.time()
        if typ in fschain.TAMPER or typ in (TAMPER_CLEARED, SERVICE_BEGIN):
            # its effect on the state goes into the entry's own slot write
            account(self.x, self.chain.s["n"] + 1, t, typ, payload)
        return self.chain.append(t, typ, b)

    def cover_was_open(self):
        return bool(self.x["fl"] & F_COVER_WAS)

    def refuse(self, path, kind):
        if path not in self.refused:
            self.refused.add(path)
            self.x["fl"] |= F_LATCHED
            self.log(REFUSED, {1: clip(path), 2: kind or "modified"})

    # -- boot -------------------------------------------------------------------------
    def boot(self, mount=True):
        p = self.port
        p.wdt_start()
        self._load()
        x = self.x
        x["boot"] += 1
        self.man = self._manifest()
        self._expire_service(p.time())  # a window never outlives the boot it was opened in (D25)
        t0 = p.ticks_ms()
        r = measure(self.man, self.ext, True, p.wdt_feed)
        self.kept = r.kept
        res = "mismatch" if r.bad else "ok"
        bp = {2: x["boot"], 3: self.man.version, 5: res}
        if p.reset_cause():
            bp[1] = p.reset_cause()
        if self.man.root:
            bp[4] = self.man.root
        self.log(BOOT, bp)
        self._apply(r, utime.ticks_diff(p.ticks_ms(), t0), True)
        # tamper seen by hardware while we were off (D9), then the switch level now
        if p.read_latch():
            x["fl"] |= F_COVER_WAS | F_LATCHED
            self.log(COVER_OPEN, {1: "latch"})
            p.clear_latch()  # re-arm; the state keeps the latched flag until a clear token
        self.seen_ev = p.ev[0]
        lvl = p.cover_open()
        if lvl:
            x["cv"] = False
            self._cover(True, "level")
        elif x["cv"]:
            self._cover(False, "level")
        if mount:
            self.mount()
        now = p.time()
        self.next_check = now + self.check_interval()
        self.next_report = now + self.report_interval()
        return r

    def mount(self):
        try:
            import vfs
        except ImportError:
            vfs = uos
        try:
            vfs.umount(self.port.VERIFIED)
        except OSError:
            pass
        vfs.mount(VerifiedFS(self), self.port.VERIFIED, readonly=True)
        uos.chdir(self.port.VERIFIED)  # relative opens (data files) get verified bytes too
        # frozen modules and the verified mount only: no '', no raw storage (D4, D5)
        usys.path[:] = [self.port.FROZEN, self.port.VERIFIED]

    def check_interval(self):
        return self.x["civ"] or self.man.policy.get("check_interval", 3600) or 3600

    def report_interval(self):
        return self.x["riv"] or self.man.policy.get("report_interval", 900) or 900

    def _apply(self, r, ms, at_boot=False):
        """Record a measurement and carry out the mismatch policy. At boot a good result is
        already in the boot entry, so no check-ok is logged."""
        x = self.x
        self.checked = True
        self.files = r.files
        self.bad = r.bad
        self.bad_kinds = r.kinds()
        x["lc"] = self.port.time()
        if not r.bad:
            if at_boot:
                return
            p = {1: r.files, 3: ms}
            if self.man.root:
                p[2] = self.man.root
            self.log(CHECK_OK, p)
            return
        x["fl"] |= F_LATCHED
        self.log(CHECK_FAIL, {1: [b for b in r.bad[:MAX_BAD]], 2: r.files})
        if self.man.policy.get("on_mismatch") == "erase":
            gone = []
            for b in r.bad:
                if b[1] in ("modified", "extra"):
                    try:
                        uos.remove(self.ext + "/" + b[0])
                        gone.append(b[0])
                    except OSError:
                        pass
                    self.kept.pop(b[0], None)
            if gone:
                self.log(ERASED, {1: gone[:MAX_BAD]})

    # -- the running device -----------------------------------------------------------
    def check(self):
        p = self.port
        t0 = p.ticks_ms()
        r = measure(self.man, self.ext, False, p.wdt_feed)
        self._apply(r, utime.ticks_diff(p.ticks_ms(), t0))
        self.next_check = p.time() + self.check_interval()
        return r

    def _counted(self):
        """True when this cover opening is one too many to log by itself (D24): it is
        counted instead, in RAM (a power cut loses the counts since the last report, never
        the fact: the first REPEAT_FREE entries and the latched flag are stored)."""
        r = self.rp
        if r[0] < REPEAT_FREE:
            r[0] += 1
            return False
        now = self.port.time()
        if not r[1]:
            r[2] = now
        r[1] += 1
        r[3] = now
        return True

    def _flush_repeats(self):
        r = self.rp
        if r[1]:
            self.log(REPEAT, {1: COVER_OPEN, 2: r[1], 3: r[2], 4: r[3]})
        self.rp = [0, 0, 0, 0]

    def _service_open(self, now):
        """The open service window still holds: device time before its end and not before
        its opening (a clock set back), the same boot, and the monotonic clock of this boot
        before its end. A clock reset cannot stretch it (D25)."""
        x = self.x
        w = x["svw"] or {}
        if not x["svc"] or now >= x["svc"] or now < w.get(2, 0) or w.get(1) != x["boot"]:
            return False
        return self.svc_ticks is None or utime.ticks_diff(self.port.ticks_ms(), self.svc_ticks) < 0

    def _expire_service(self, now):
        x = self.x
        if x["svc"] and not self._service_open(now):
            x["svc"] = 0
            x["svw"] = None
            self.svc_ticks = None
            self.log(SERVICE_END, {})

    def _cover(self, is_open, src):
        x = self.x
        self._expire_service(self.port.time())
        if is_open and not x["cv"]:
            x["cv"] = True
            if x["svc"]:
                self.log(COVER_OPEN, {1: "service"})  # expected: a technician's window
            else:
                x["fl"] |= F_COVER_WAS | F_LATCHED
                if not self._counted():
                    self.log(COVER_OPEN, {1: src})
        elif not is_open and x["cv"]:
            x["cv"] = False
            if not self.rp[1]:  # the closing of a counted opening is counted with it
                self.log(COVER_CLOSE, {})

    def poll(self):
        """One pass of the main loop: drain tamper events, run due checks; returns a report
        when one is due (the caller sends it), else None."""
        p = self.port
        p.wdt_feed()
        x = self.x
        ev = p.ev[0]
        lvl = p.cover_open()
        if ev != self.seen_ev:
            n = ev - self.seen_ev
            self.seen_ev = ev
            if lvl == x["cv"] and n >= 2 and not lvl:
                self._cover(True, "irq")  # opened and closed between two polls
            self._cover(lvl, "irq")
        elif lvl != x["cv"]:
            self._cover(lvl, "level")
        m = p.magnet()
        if m and not x["fl"] & F_MAGNET:
            x["fl"] |= F_MAGNET | F_LATCHED
            self.log(MAGNET, {1: m})
        now = p.time()
        self._expire_service(now)
        if now >= self.next_check:
            self.check()
        if now >= self.next_report:
            self.next_report = now + self.report_interval()
            return self.report()
        return None

    def flags(self):
        x = self.x
        f = x["fl"] & LATCHED
        if self.bad:
            f |= F_MISMATCH
            if self.man.policy.get("on_mismatch") != "report":
                f |= F_REFUSING
        if self.refused:
            f |= F_REFUSING
        if self.port.cover_open():
            f |= F_COVER_NOW
        if x["svc"]:
            f |= F_SERVICE
        if self.chain.s["dr"]:
            f |= F_OVERFLOW
        return f

    # -- uplink -----------------------------------------------------------------------
    def report(self, limit=cose.MAX):
        """The sealed report (COSE_Mac0 bytes, a bytearray), at most limit bytes and no more
        than the heap can hold: a backlog that does not fit goes out in parts, oldest
        entries first (Chain.plan). limit=None: the whole backlog whatever its size.

        Memory does not grow with the log (D24): the cut is measured in one pass over the
        log, then the report is written straight into one buffer of its exact size, the
        segment streamed from the log entry by entry, and MAC'd in place. No decoded entry
        list, no growing buffer, no copy of the payload."""
        x = self.x
        s = self.chain.s
        self._flush_repeats()
        x["rseq"] += 1
        self.chain.save()  # persisted before sending
        status = 2 if not self.checked else (1 if self.bad else 0)
        kid = s["d"].encode()
        pl = {1: s["d"], 2: s["e"], 3: x["rseq"], 4: x["boot"], 5: self.port.time(),
              6: [self.man.product, self.man.version, self.man.root],
              7: [status, self.files, x["lc"], [[b[0], b[1]] for b in self.bad[:MAX_BAD]]],
              8: self.flags(), 9: None}
        if x["nonce"]:
            pl[10] = x["nonce"]
        if self.reading:
            pl[11] = self.reading
        # the payload less its null at key 9, which the segment replaces
        rest = len(cbor.enc(pl)) - 1
        # the COSE_Mac0 around the payload: tag 17, array head, protected {1: 5}, {4: kid},
        # the payload's head (3 bytes whenever the room is tight, so the cut is exact), MAC
        frame = 6 + len(cbor.enc({4: kid})) + 3 + 34
        budget = self._budget(limit)
        while True:
            first, count, size = self.chain.plan(None if budget is None else budget - frame - rest)
            try:
                rep = cose.mac0_into(x["R"], kid, rest + size, lambda w: self._payload(w, pl, first, count))
                break
            except MemoryError:
                # the free heap is there but not in one piece: a smaller part, until one entry
                if count <= 1:
                    raise
                budget = (frame + rest + size) // 2
        self.partial = count > 0 and self._last < s["n"]
        return rep

    def _payload(self, w, pl, first, count):
        # the report map with the planned segment at key 9; its keys are ints below 24,
        # whose numeric order is the deterministic (encoded) order
        cbor._head(5, len(pl), w)
        for k in sorted(pl):
            cbor._enc(k, w)
            if k == 9:
                self._last = self.chain.write_segment(w, first, count)
            else:
                cbor._enc(pl[k], w)

    @staticmethod
    def _budget(limit):
        """The most a report may take: limit, and no more than the free heap after a
        collection less REPORT_RESERVE (reading the log, a record at a time, and sending).
        The report is the only large allocation; if the heap is too fragmented to give it
        in one piece, report() halves it and tries again. limit None is left alone (the
        whole backlog: tests and tools)."""
        if limit is None:
            return None
        try:
            import gc

            gc.collect()
            room = gc.mem_free() - REPORT_RESERVE
        except Exception:
            return limit
        return max(1024, min(limit, room))

    # -- downlink ---------------------------------------------------------------------
    def _bad(self, why):
        # Tamper-class entries are never dropped, so whoever can reach the downlink topic
        # could fill the log with garbage: after MAX_BAD_DOWNLINK rejections without a good
        # ack in between, further ones are only counted (reported with the next one logged).
        x = self.x
        x["bd"] += 1
        if x["bd"] <= MAX_BAD_DOWNLINK:
            p = {1: why}
            self.log(BAD_DOWNLINK, p)
        else:
            self.chain.save()
        return why

    def _open(self, data):
        """Verify a downlink under T and decode it; returns the map or raises BadMessage."""
        s = self.chain.s
        kid, payload = cose.open_mac0(data, self.x["T"])
        try:
            m = cbor.dec(payload)
        except Exception:
            raise cose.BadMessage("malformed")
        if not isinstance(m, dict):
            raise cose.BadMessage("malformed")
        if kid != s["d"].encode() or m.get(1) != s["d"]:
            raise cose.BadMessage("wrong-device")
        if m.get(2) != s["e"]:
            raise cose.BadMessage("wrong-epoch")
        return m

    def ack(self, data):
        """Apply a server ack by the downlink rules of docs/PROTOCOL.md (vectors in
        testdata/vectors/downlink, shared with the Go agent): verify it (S5), take it only
        if it answers the last report sent (an authentic answer to an earlier one is
        "stale" and ignored whole, tokens included), prune what the anchor covers, run its
        tokens. Returns "ok", "stale", "rejected:<reason>" or the rejection name (also
        logged as bad-downlink)."""
        x = self.x
        c = self.chain
        try:
            a = self._open(data)
        except cose.BadMessage as e:
            return self._bad(e.args[0])
        acked = a.get(3)
        if not isinstance(acked, int) or acked < 1 or acked > x["rseq"]:
            return self._bad("unsent-rseq")
        if acked < x["rseq"]:
            return "stale"
        if a.get(16):
            nonce = a.get(10)
            if isinstance(nonce, bytes) and nonce:
                x["nonce"] = nonce  # authentic: worth echoing even on a refusal
                c.save()
            return "rejected:" + str(a[16])
        anc = a.get(12)
        if not isinstance(anc, list) or len(anc) != 2 or not isinstance(anc[0], int) or not isinstance(anc[1], bytes):
            return self._bad("malformed")
        n, h = anc
        ha = c.head_at(n)
        if ha is None and n > c.s["n"]:
            return self._bad("anchor-ahead")
        if ha is not None and not ct_eq(ha, h):
            return self._bad("anchor-mismatch")
        x["ack"] = acked
        extra = x["bd"] - MAX_BAD_DOWNLINK
        x["bd"] = 0
        if extra > 0:
            self.log(BAD_DOWNLINK, {1: "%d more rejected downlinks not logged" % extra})
        nonce = a.get(10)
        if isinstance(nonce, bytes):
            x["nonce"] = nonce
        if ha is not None and n > c.s["bn"]:
            c.prune(n, ha)
            if self.partial and n < c.s["n"]:
                # The last report carried only the oldest part of a backlog too big for one
                # message, and this ack moved the anchor forward: the next part is due now
                # (at the next pass of the loop), not a whole report interval later. Each
                # such ack prunes something, so this ends when the backlog is drained; an
                # ack that does not advance the anchor leaves the schedule as it was.
                self.next_report = self.port.time()
        else:
            c.save()
        if isinstance(a.get(13), bytes):
            self.st.write("receipt", a[13])
        if c.s["dr"] and c.log_size < c.cap:
            d = c.s["dr"]
            c.s["dr"] = 0
            self.log(OVERFLOW, {1: d})
        res = "ok"
        for t in a.get(14) or ():
            r = self.token(t, True)
            if r != "ok":
                res = "ok; token " + r
        return res

    def token(self, data, in_ack=False):
        """Apply a single-use command token (D10, S6, S7). in_ack: it came inside an
        accepted ack, where a spent one is a harmless repeat (the server re-sends a pending
        token until it sees it used) and is ignored; anywhere else it is refused."""
        x = self.x
        p = self.port
        try:
            t = self._open(data)
        except cose.BadMessage as e:
            return self._bad(e.args[0])
        return self.apply_token(t, in_ack)

    def apply_token(self, t, in_ack=False):
        """Apply an authentic token (its decoded map), whichever frame carried it."""
        x = self.x
        p = self.port
        tid = t.get(3)
        if not isinstance(tid, bytes) or len(tid) != 16:
            return self._bad("malformed")
        for u in x["used"]:
            if ct_eq(u[0], tid):
                return "ok" if in_ack else self._bad("token-replay")
        until = t.get(5, 0)
        if not isinstance(until, int) or until < 1 or until < x["rseq"] or (t.get(6, 0) and t[6] < p.time()):
            return self._bad("token-expired")
        act = t.get(4)
        if act not in ("service", "clear", "manifest", "config"):
            return self._bad("unknown-action")
        used = [u for u in x["used"] if u[1] >= x["rseq"]]
        if len(used) >= MAX_TOKENS:
            return self._bad("token-store-full")
        used.append([tid, until])
        x["used"] = used  # saved with the entry below: the id is spent with its effect
        args = t.get(7) or {}
        if act == "service":
            win = args.get(6) or 3600
            x["svc"] = p.time() + win
            x["svw"] = {1: x["boot"], 2: p.time(), 5: tid}
            self.svc_ticks = utime.ticks_add(p.ticks_ms(), win * 1000)
            pl = {1: tid}
            if args.get(1):
                pl[2] = args[1]
            if args.get(2):
                pl[3] = args[2]
            self.log(SERVICE_BEGIN, pl)
        elif act == "clear":
            x["fl"] &= ~LATCHED
            x["sum"] = None
            self.refused = set()
            p.clear_latch()
            self.log(TAMPER_CLEARED, {1: tid})
        elif act == "manifest":
            try:
                raw = args[3]
                m = Manifest.from_cbor(cose.sign1_payload(raw))
            except Exception:
                return self._bad("bad-manifest")
            if m.product != self.man.product:
                return self._bad("wrong-product")
            if m.version <= self.man.version:
                return self._bad("downgrade")
            self.st.write("manifest.cose", raw)
            old = self.man.version
            self.man = m
            x["mv"] = m.version
            self.log(MANIFEST_UPDATE, {1: old, 2: m.version})
            self.check()
        elif act == "config":
            if args.get(4):
                x["civ"] = args[4]
            if args.get(5):
                x["riv"] = args[5]
            self.chain.save()
        return "ok"
