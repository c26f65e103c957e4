# HTTP POST of a report to /v1/reports, for the guard's uplink. micropython-lib's
# `requests` reads a response of any size and blocks without feeding the watchdog, so the
# guard has its own: one request per connection (Connection: close), a deadline, short
# polls that feed the watchdog, headers bounded to 4 KiB and the body to one message.
import usocket
import uselect
import utime
from fieldseal.uplink import handshake_failed, write_all

POLL_MS = 250
MAX_HEAD = 4096
CONTENT_TYPE = 'application/cose; cose-type="cose-mac0"'


class HTTPError(Exception):
    pass


def split_url(url):
    """(scheme, host, port, path) of an http:// or https:// URL."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise HTTPError("not an http(s) URL: %s" % url)
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return scheme, host, int(port) if port else (443 if scheme == "https" else 80), "/" + path


def post(url, body, tls=None, feed=None, timeout_ms=10000, max_body=16384):
    """POST body to url; returns (status, headers {lowercase name: value}, body)."""
    feed = feed or (lambda: None)
    scheme, host, port, path = split_url(url)
    if scheme == "https" and tls is None:
        raise HTTPError("https needs TLS, which this port does not offer")
    deadline = utime.ticks_add(utime.ticks_ms(), timeout_ms)
    s = raw = usocket.socket()
    try:
        s.settimeout(timeout_ms / 1000)
        s.connect(usocket.getaddrinfo(host, port)[0][-1])
        if scheme == "https":
            s = tls(s, host)  # the handshake runs in the first write
        s.setblocking(False)
        head = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" % (path, host, CONTENT_TYPE, len(body)))
        try:
            write_all(s, head.encode(), deadline, feed, HTTPError)
        except Exception as e:
            if scheme != "https":
                raise
            raise HTTPError(handshake_failed(host, e))
        write_all(s, body, deadline, feed, HTTPError)
        poller = uselect.poll()
        poller.register(s, uselect.POLLIN)
        buf = bytearray()
        status, headers, clen, start = None, {}, None, -1
        while True:
            left = utime.ticks_diff(deadline, utime.ticks_ms())
            if left <= 0:
                raise HTTPError("timeout")
            feed()
            if not poller.poll(min(left, POLL_MS)):
                continue
            chunk = s.read(2048)
            if chunk is None:
                continue
            if chunk:
                buf.extend(chunk)
            if start < 0:
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    if len(buf) > MAX_HEAD or not chunk:
                        raise HTTPError("bad response head")
                    continue
                lines = bytes(buf[:i]).decode().split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                    raise HTTPError("bad status line")
                status = int(parts[1])
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    headers[k.strip().lower()] = v.strip()
                if "content-length" in headers:
                    clen = int(headers["content-length"])
                    if clen > max_body:
                        raise HTTPError("response body of %d bytes refused" % clen)
                start = i + 4
            if len(buf) - start > max_body:
                raise HTTPError("response body over %d bytes" % max_body)
            if (clen is not None and len(buf) - start >= clen) or not chunk:
                end = start + clen if clen is not None else len(buf)
                return status, headers, bytes(buf[start:end])
    finally:
        s.close()
        if s is not raw:
            raw.close()  # a failed TLS handshake detaches the TLS socket from it
