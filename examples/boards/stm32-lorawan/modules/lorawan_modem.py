# The modem adapter of the stm32-lorawan board template: reports leave as the guard's LPWAN
# profile (fieldseal/lpwan.py: frames of at most 51 bytes) through a LoRaWAN modem on a
# UART. Two parts: Rui3 speaks one modem family's AT commands and nothing else; swap it
# for another family's class with the same three methods (joined, join, send).
# LoRaWANUplink is what the guard's loop calls (deliver), whatever the modem.
import ubinascii
import utime
from fieldseal import lpwan

FPORT = 73  # the LoRaWAN port of fieldseal frames (the server's [[lorawan]] fport)


class ModemError(Exception):
    pass


class Rui3:
    """RAKwireless RUI3 AT commands (RAK3172 and the other WisDuo modules), class A, OTAA
    keys already set in the modem: AT+NJS=? (joined?), AT+JOIN=1:0:10:8, AT+SEND=port:hex,
    then the events +EVT:JOINED, +EVT:RX_1/RX_2/RX_B:rssi:snr:UNICAST:port:hex (a downlink
    in a receive window) and +EVT:TX_DONE. The UART needs only write(), any() and read(n)."""

    def __init__(self, uart, feed=None, timeout_ms=30000):
        self.uart = uart
        self.feed = feed or (lambda: None)  # the watchdog, fed while waiting
        self.timeout_ms = timeout_ms
        self.buf = b""

    def _line(self, deadline):
        """The next non-empty line from the modem, or None at the deadline. Bounded: a modem
        that sends garbage without line ends cannot grow the buffer past 512 bytes."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 1:]
                line = line.strip()
                try:
                    line = line.decode()
                except UnicodeError:
                    continue  # line noise: not a modem answer
                if line:
                    return line
                continue
            if len(self.buf) > 512:
                self.buf = b""
            if utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
                return None
            n = self.uart.any()
            if n:
                self.buf += self.uart.read(n) or b""
            else:
                self.feed()
                utime.sleep_ms(5)

    def _cmd(self, text, timeout_ms=2000):
        """Send one command; returns its value lines; raises ModemError on an AT_* status.
        Events that arrive meanwhile (+EVT:…) are returned too, for the caller to read."""
        self.uart.write(text.encode() + b"\r\n")
        deadline = utime.ticks_add(utime.ticks_ms(), timeout_ms)
        out = []
        while True:
            line = self._line(deadline)
            if line is None:
                raise ModemError("no answer to " + text.split("=")[0])
            if line == "OK":
                return out
            if line.startswith("AT_") or line == "ERROR":
                raise ModemError(line)
            out.append(line)

    def _event(self, deadline, want):
        """Wait for an event line starting with one of want; returns (that line, downlink
        frames seen on the way)."""
        downs = []
        while True:
            line = self._line(deadline)
            if line is None:
                return None, downs
            f = self._rx(line)
            if f is not None:
                downs.append(f)
            for w in want:
                if line.startswith(w):
                    return line, downs

    @staticmethod
    def _rx(line):
        """A downlink event's frame (+EVT:RX_1:-70:8:UNICAST:73:0102…) on fieldseal's port,
        else None: other ports and malformed events are not the guard's."""
        if not line.startswith("+EVT:RX_"):
            return None
        p = line.split(":")
        if len(p) < 7 or p[5] != str(FPORT):
            return None
        try:
            return ubinascii.unhexlify(p[6])
        except ValueError:
            return None

    def joined(self):
        for line in self._cmd("AT+NJS=?"):
            if line.startswith("AT+NJS="):
                return line.endswith("=1")
        raise ModemError("no join state")

    def join(self):
        self._cmd("AT+JOIN=1:0:10:8")  # join now, no auto-join, retry every 10 s, 8 attempts
        deadline = utime.ticks_add(utime.ticks_ms(), self.timeout_ms)
        line, _ = self._event(deadline, ("+EVT:JOINED", "+EVT:JOIN_FAILED"))
        if line != "+EVT:JOINED":
            raise ModemError(line or "join: no answer")

    def send(self, port, data):
        """One unconfirmed uplink; returns the downlink frames its receive windows brought."""
        self._cmd("AT+SEND=%d:%s" % (port, ubinascii.hexlify(data).decode()))
        deadline = utime.ticks_add(utime.ticks_ms(), self.timeout_ms)
        line, downs = self._event(deadline, ("+EVT:TX_DONE", "+EVT:SEND_CONFIRMED"))
        if line is None:
            raise ModemError("send: no TX_DONE")
        return downs


class LoRaWANUplink:
    """The guard's uplink over a LoRaWAN modem (the loop's deliver(), fieldseal/boot.py):
    each report slot sends one LPWAN round — the oldest log entries not sent yet, at most
    max_frames frames in all (lpwan.ROUND_FRAMES: a backlog goes over several slots), then a
    status — and applies the acks and tokens the receive windows bring. The COSE report the loop
    built is not sent: the frames carry the same evidence in a 51-byte-frame form. Store
    and forward is the log, as for the other uplinks: a round that fails leaves its entries
    unsent and unacknowledged, the next round carries them, brought forward with backoff."""

    def __init__(self, device, modem, fport=FPORT, backoff=(60, 3600), max_frames=lpwan.ROUND_FRAMES):
        self.d = device
        self.modem = modem
        self.fport = fport
        self.meter = lpwan.Meter(device, max_frames)
        self.backoff = backoff
        self.fails = 0
        self.last = ""  # outcome of the last round, for the application and tests

    def deliver(self, report=None):
        m = self.meter
        before = m.mark()
        res = "sent"
        try:
            if not self.modem.joined():
                self.modem.join()
            downs = []
            for f in m.uplink():
                if len(f) > lpwan.MAX_FRAME:
                    raise ModemError("a %d-byte frame" % len(f))  # never: lpwan.py builds ≤ 51
                downs.extend(self.modem.send(self.fport, f))
            for f in downs:
                res = m.downlink(f)  # "ok", "stale", "rejected" or a logged rejection name
        except Exception as e:  # modem or link trouble of every kind: retry later, never crash the guard
            m.rewind(before)  # what this round did not get out goes with the next one
            self.last = "error: %s" % e
            self.fails += 1
            lo, hi = self.backoff
            wait = min(hi, lo << min(self.fails - 1, 16))
            now = self.d.port.time()
            if self.d.next_report > now + wait:
                self.d.next_report = now + wait
            return None
        self.fails = 0
        self.last = res
        return res

    def close(self):
        pass
