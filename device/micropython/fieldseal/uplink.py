# The guard's uplink: delivers reports over MQTT 3.1.1 or HTTP and hands the answers to the
# device, which takes only the ack whose acked rseq answers the report just sent
# (PROTOCOL.md, "Downlink rules"). Store-and-forward is the evidence log itself: a report
# that does not arrive leaves its entries unacknowledged, and the next report carries them
# again (a failed attempt brings the next one forward, with exponential backoff).
import ubinascii
import ujson
import utime
from fieldseal import fscrypto

# on internal storage: {"mqtt": url, "http": url, "topic_root": root}, from the bundle
SETTINGS = "uplink.json"
TAKEN = ("ok", "rejected:")  # outcomes that end the wait for this report's answer
TOPIC_ROOT = "fieldseal/v1"  # the server's default (wire.DefaultTopicRoot)


def check_topic_root(root, where):
    """root if the server can have it (wire.ValidTopicRoot: levels separated by '/', none
    empty, no wildcard or NUL, no leading '$'; testdata/vectors/wire/topic-roots.json holds
    the guard and Go to the same rule), else ValueError naming where it came from: under a
    root the server cannot have, every report would go where nobody listens. One function
    rather than a predicate and a check: each module global costs heap on the board."""
    ok = isinstance(root, str) and root and root[0] != "$" and "+" not in root and "#" not in root and "\0" not in root
    if not ok or "" in root.split("/"):
        raise ValueError("%s: topic root %r: want levels separated by '/', no wildcards (+ #), no leading '$', no empty level"
                         % (where, root))
    return root


def tls_wrapper(ca):
    """A function (sock, host) -> TLS socket checking the server against the CA certificate
    ca (DER bytes), when the port offers TLS that checks certificates (the built-in `tls`,
    or `ussl` on older MicroPython: names a file on storage cannot shadow); None when it
    does not.

    The server must present a certificate chain to ca, valid now, for the host name of the
    uplink URL (mbedTLS matches it against the certificate's DNS names and CN: use a name,
    not an IP address). The socket comes back non-blocking with the handshake still to run:
    the client's first write runs it, in the same short waits that feed the watchdog as any
    write and by the same deadline (a blocking handshake could outlast the watchdog). A
    failed check raises there, naming what mbedTLS found, before any data is sent."""
    try:
        import tls
    except ImportError:
        try:
            import ussl as tls
        except ImportError:
            return None
    if not (hasattr(tls, "SSLContext") and hasattr(tls, "CERT_REQUIRED")):
        return None  # no TLS, or TLS that cannot check a certificate (axTLS: esp8266)
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = tls.CERT_REQUIRED
    if ctx.verify_mode != tls.CERT_REQUIRED or not hasattr(ctx, "load_verify_locations"):
        return None  # a TLS that would connect unverified is no TLS for the guard
    try:
        ctx.load_verify_locations(ca)  # positional: the built-in takes no keywords
    except Exception as e:
        raise ValueError("the server's CA certificate (ca.der) is unusable: %s" % e)

    def wrap(sock, host):
        sock.setblocking(False)
        return ctx.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)

    return wrap


def write_all(sock, data, deadline, feed, error=OSError):
    """Write all of data on a non-blocking socket by the deadline (ticks_ms), feeding the
    watchdog while the socket cannot take more (or, over TLS, while the handshake waits for
    the server); error("write timeout") when the deadline passes. For both transports."""
    mv = memoryview(data)
    while mv:
        if utime.ticks_diff(deadline, utime.ticks_ms()) <= 0:
            raise error("write timeout")
        n = sock.write(mv)
        if n is None:
            feed()
            utime.sleep_ms(10)
            continue
        mv = mv[n:]


def handshake_failed(host, e):
    """The message for an error raised by the first write over TLS (the handshake's);
    mbedTLS gives one finding per line."""
    return "TLS handshake with %s failed: %s" % (host, str(e).strip().replace("\n", "; "))


def mqtt_password(R):
    # lowercase hex of HMAC-SHA-256(R, "fs1/mqtt-password") (PROTOCOL.md, "Transports")
    return ubinascii.hexlify(fscrypto.hmac(R, b"fs1/mqtt-password")).decode()


def settings(store):
    raw = store.read(SETTINGS)
    return ujson.loads(raw) if raw else {}


class Uplink:
    """One server URL: mqtt://, mqtts://, http:// or https://."""

    def __init__(self, device, url, tls=None, timeout_ms=10000, backoff=(5, 900), topic_root=TOPIC_ROOT):
        self.d = device
        self.url = url
        self.root = check_topic_root(topic_root, "uplink")  # MQTT: <root>/<dev>/up and /down
        self.scheme = url.split("://")[0]
        if self.scheme not in ("mqtt", "mqtts", "http", "https"):
            raise ValueError("uplink URL must be mqtt, mqtts, http or https: %s" % url)
        self.secure = self.scheme in ("mqtts", "https")
        if self.secure and tls is None:
            # the server's CA: the port's TLS_CA (DER), else ca.der on internal storage
            ca = getattr(device.port, "TLS_CA", None) or device.st.read("ca.der")
            if not ca:
                raise ValueError("%s needs the server's CA certificate (ca.der on internal storage)" % url)
            tls = tls_wrapper(ca)
            if tls is None:
                raise ValueError("%s needs TLS that checks certificates, which this port does not offer" % url)
        self.tls = tls
        self.timeout_ms = timeout_ms
        self.backoff = backoff
        self.fails = 0
        self.client = None
        self.last = ""  # outcome of the last attempt, for the application and tests

    # -- MQTT -------------------------------------------------------------------------
    def _mqtt(self):
        if self.client is not None and self.client.sock is not None:
            return self.client
        from fieldseal.mqtt import Client

        rest = self.url.split("://", 1)[1].split("/")[0]
        host, _, port = rest.partition(":")
        dev = self.d.chain.s["d"]
        c = Client(host, int(port) if port else (8883 if self.secure else 1883), dev, user=dev,
                   password=mqtt_password(self.d.x["R"]), tls=self.tls,
                   feed=self.d.port.wdt_feed, timeout_ms=self.timeout_ms)
        try:
            c.connect()
            c.subscribe("%s/%s/down" % (self.root, dev))
        except Exception:
            c.close()
            raise
        self.client = c
        return c

    def _send_mqtt(self, report):
        dev = self.d.chain.s["d"]
        c = self._mqtt()
        while c.queue:  # answers to earlier reports, come too late: this report supersedes them
            c.queue.pop(0)
        c.publish("%s/%s/up" % (self.root, dev), report)
        deadline = utime.ticks_add(utime.ticks_ms(), self.timeout_ms)
        while True:
            left = utime.ticks_diff(deadline, utime.ticks_ms())
            if left <= 0:
                return None
            m = c.wait(left)
            if m is None:
                return None
            res = self.d.ack(m[1])
            if res.startswith(TAKEN):
                return res
            # stale (an earlier report's answer) or refused (logged by the device): the
            # answer to this report may still come

    # -- HTTP -------------------------------------------------------------------------
    def _send_http(self, report):
        from fieldseal import http

        status, headers, body = http.post(self.url.rstrip("/") + "/v1/reports", report, tls=self.tls,
                                          feed=self.d.port.wdt_feed, timeout_ms=self.timeout_ms)
        if status in (200, 409) and body:
            return self.d.ack(body)
        return None if status >= 500 else "refused:%d %s" % (status, headers.get("fieldseal-reject", ""))

    # -- the loop's entry point -------------------------------------------------------
    def deliver(self, report):
        """Send one report and apply its answer. Returns the device's outcome ("ok",
        "rejected:<reason>", a downlink rejection name) or None when nothing answered; on
        failure the next report is brought forward (backoff)."""
        up = getattr(self.d.port, "network_up", None)
        try:
            if up is not None and not up():
                raise OSError("network not up")
            if self.scheme.startswith("mqtt"):
                res = self._send_mqtt(report)
            else:
                res = self._send_http(report)
        except Exception as e:  # network errors of every kind: retry later, never crash the guard
            if self.client is not None:
                self.client.close()
            res = None
            self.last = "error: %s" % e
            print("fieldseal uplink:", self.last)  # the console is the board's log
        else:
            self.last = res or "no answer"
        if res is not None and res.startswith("ok"):
            self.fails = 0
            return res
        self.fails += 1
        lo, hi = self.backoff
        wait = min(hi, lo << min(self.fails - 1, 16))
        now = self.d.port.time()
        if self.d.next_report > now + wait:
            self.d.next_report = now + wait  # store-and-forward: the entries go with the next one
        return res

    def close(self):
        if self.client is not None:
            self.client.close()
            self.client = None


def pick(device, url=None):
    """The uplink for a device: url, else the port's UPLINK, else the server URLs the
    provisioning bundle named (kept in uplink.json); None when there is none. MQTT topics
    are under the port's TOPIC_ROOT, else the bundle's topic root, else the default; a
    root the server cannot have is a ValueError here, at boot."""
    s = settings(device.st)
    url = url or getattr(device.port, "UPLINK", None)
    if not url:
        url = s.get("mqtt") or s.get("http")
    root = getattr(device.port, "TOPIC_ROOT", None) or s.get("topic_root") or TOPIC_ROOT
    return Uplink(device, url, topic_root=root) if url else None
