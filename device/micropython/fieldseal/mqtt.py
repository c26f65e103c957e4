# A small MQTT 3.1.1 client for the guard's uplink (QoS 1 publish, one QoS 1 subscription).
#
# micropython-lib's umqtt.simple was the first choice, but it does not fit a guard: its
# waits block without a way to feed the watchdog (wait_msg sets the socket blocking again
# after the first byte, so a broker that stalls mid-packet hangs the device), it reads a
# message of whatever size the broker announces (up to 256 MiB: a MemoryError), and it
# signals protocol errors with assert. This client reads with deadlines in short polls that
# feed the watchdog, refuses packets over a fixed bound and raises MQTTError.
#
# It never sets a will and never publishes retained (S11: the broker must not carry a
# device's message onto another's topic).
import usocket
import uselect
import utime
from fieldseal.uplink import handshake_failed, write_all


class MQTTError(Exception):
    pass


POLL_MS = 250  # the longest the client waits without feeding the watchdog
MAX_PACKET = 16384 + 512  # a fieldseal message (16 KiB) plus topic and headers
MAX_QUEUED = 8  # downlink messages kept while waiting for something else


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return out


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return bytes((len(s) >> 8, len(s) & 0xFF)) + s


class Client:
    def __init__(self, host, port, client_id, user=None, password=None, tls=None,
                 keepalive=60, feed=None, timeout_ms=10000, max_packet=MAX_PACKET):
        """tls: None for plain TCP, or a function (sock, host) -> wrapped socket
        (uplink.tls_wrapper)."""
        self.host = host
        self.port = port
        self.client_id = client_id
        self.user = user
        self.password = password
        self.tls = tls
        self.keepalive = keepalive
        self.feed = feed or (lambda: None)
        self.timeout_ms = timeout_ms
        self.max_packet = max_packet
        self.sock = None
        self.raw = None  # the TCP socket under a TLS one
        self.connected = False  # after CONNACK
        self.poller = None
        self.pid = 0
        self.rx = bytearray()
        self.queue = []  # (topic, payload) received while waiting for an acknowledgement
        self.last_tx = 0

    # -- socket -----------------------------------------------------------------------
    def _deadline(self, ms=None):
        return utime.ticks_add(utime.ticks_ms(), self.timeout_ms if ms is None else ms)

    def _left(self, deadline):
        return utime.ticks_diff(deadline, utime.ticks_ms())

    def _send(self, data):
        write_all(self.sock, data, self._deadline(), self.feed, MQTTError)
        self.last_tx = utime.ticks_ms()

    def _fill(self, need, deadline):
        """Read until rx holds need bytes; False when the deadline passes first."""
        while len(self.rx) < need:
            left = self._left(deadline)
            if left <= 0:
                return False
            self.feed()
            if not self.poller.poll(min(left, POLL_MS)):
                continue
            chunk = self.sock.read(min(need - len(self.rx) + 512, 2048))
            if chunk is None:
                continue
            if not chunk:
                self.close()
                raise MQTTError("connection closed by the broker")
            self.rx.extend(chunk)
        return True

    def _packet(self, deadline):
        """The next whole packet as (type byte, body), or None at the deadline."""
        if not self._fill(2, deadline):
            return None
        n = 0
        i = 1
        while True:
            if not self._fill(i + 1, deadline):
                return None
            b = self.rx[i]
            n |= (b & 0x7F) << (7 * (i - 1))
            i += 1
            if not b & 0x80:
                break
            if i > 4:
                raise MQTTError("malformed length")
        if n > self.max_packet:
            self.close()
            raise MQTTError("packet of %d bytes refused" % n)
        if not self._fill(i + n, deadline):
            return None
        typ = self.rx[0]
        body = bytes(self.rx[i:i + n])
        self.rx = self.rx[i + n:]
        return typ, body

    # -- protocol ---------------------------------------------------------------------
    def connect(self):
        self.close()
        addr = usocket.getaddrinfo(self.host, self.port)[0][-1]
        self.raw = self.sock = usocket.socket()
        try:
            self._connect(addr)
        except Exception:
            self.close()  # whatever failed: a socket left open per attempt exhausts a board's few
            raise

    def _connect(self, addr):
        s = self.sock
        s.settimeout(self.timeout_ms / 1000)
        s.connect(addr)
        if self.tls:
            s = self.sock = self.tls(s, self.host)  # the handshake runs in the first write
        s.setblocking(False)
        self.poller = uselect.poll()
        self.poller.register(s, uselect.POLLIN)
        self.rx = bytearray()
        self.queue = []
        flags = 0x02  # clean session; no will (S11)
        payload = _str(self.client_id)
        if self.user is not None:
            flags |= 0x80
            payload += _str(self.user)
            if self.password is not None:
                flags |= 0x40
                payload += _str(self.password)
        vh = _str("MQTT") + bytes((4, flags, self.keepalive >> 8, self.keepalive & 0xFF))
        body = vh + payload
        try:
            self._send(b"\x10" + _varint(len(body)) + body)
        except Exception as e:
            if not self.tls:
                raise
            raise MQTTError(handshake_failed(self.host, e))
        p = self._packet(self._deadline())
        if p is None:
            raise MQTTError("no CONNACK")
        if p[0] != 0x20 or len(p[1]) != 2:
            raise MQTTError("expected CONNACK")
        if p[1][1] != 0:
            raise MQTTError("connection refused, code %d" % p[1][1])
        self.connected = True

    def _next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def _await(self, want, pid, deadline):
        """Handle packets until one of type want with packet id pid arrives."""
        while True:
            p = self._packet(deadline)
            if p is None:
                raise MQTTError("timeout waiting for %s" % ("PUBACK" if want == 0x40 else "SUBACK"))
            typ, body = p
            if typ & 0xF0 == 0x30:
                self._incoming(typ, body)
            elif typ == want and len(body) >= 2 and (body[0] << 8 | body[1]) == pid:
                return body

    def subscribe(self, topic):
        pid = self._next_pid()
        body = bytes((pid >> 8, pid & 0xFF)) + _str(topic) + b"\x01"
        self._send(b"\x82" + _varint(len(body)) + body)
        ack = self._await(0x90, pid, self._deadline())
        if len(ack) != 3 or ack[2] == 0x80:
            raise MQTTError("subscription to %s refused" % topic)

    def publish(self, topic, payload):
        """QoS 1, never retained; returns when the broker's PUBACK arrives."""
        pid = self._next_pid()
        body = _str(topic) + bytes((pid >> 8, pid & 0xFF))
        self._send(b"\x32" + _varint(len(body) + len(payload)) + body)
        self._send(payload)
        self._await(0x40, pid, self._deadline())

    def _incoming(self, typ, body):
        if len(body) < 2:
            raise MQTTError("malformed PUBLISH")
        tl = body[0] << 8 | body[1]
        topic = body[2:2 + tl].decode()
        rest = 2 + tl
        qos = (typ >> 1) & 3
        if qos:
            pid = body[rest:rest + 2]
            rest += 2
            if qos == 1:
                self._send(b"\x40\x02" + pid)
            else:
                raise MQTTError("QoS 2 not supported")
        if len(self.queue) >= MAX_QUEUED:
            self.queue.pop(0)  # the oldest answer is the least likely to be the awaited one
        self.queue.append((topic, body[rest:]))

    def wait(self, ms):
        """The next message received (topic, payload), or None after ms."""
        if self.queue:
            return self.queue.pop(0)
        deadline = self._deadline(ms)
        while True:
            if self.keepalive and utime.ticks_diff(utime.ticks_ms(), self.last_tx) > self.keepalive * 500:
                self._send(b"\xc0\x00")  # PINGREQ
            p = self._packet(deadline)
            if p is None:
                return None
            if p[0] & 0xF0 == 0x30:
                self._incoming(p[0], p[1])
                return self.queue.pop(0)

    def close(self):
        if self.sock is not None:
            if self.connected:
                try:
                    self.sock.write(b"\xe0\x00")  # DISCONNECT: the broker drops the session
                except Exception:
                    pass
            try:
                self.sock.close()
            except Exception:
                pass
        if self.raw is not None and self.raw is not self.sock:
            try:
                self.raw.close()  # a failed TLS handshake detaches the TLS socket from it
            except Exception:
                pass
        self.sock = None
        self.raw = None
        self.poller = None
        self.connected = False
