# COSE_Mac0 (RFC 9052) as wire/cose.go makes it: tag 17, protected = bstr of {1: 5}
# (HMAC 256/256), unprotected = {4: kid}, payload bstr, tag = HMAC-SHA-256 over the CBOR
# array ["MAC0", protected, h'', payload]. Nothing else is accepted.
from fieldseal import cbor
from fieldseal.fscrypto import hmac, ct_eq

PROT_MAC0 = b"\xa1\x01\x05"  # {1: 5}
MAX = 16384


class BadMessage(Exception):
    # args[0] is the stable rejection name: malformed, oversize, bad-mac, unsupported
    pass


def _mac(key, prot, payload):
    # HMAC over the CBOR of ["MAC0", prot, h'', payload], fed in two parts so a large
    # payload (a report with its log segment) is not copied once more
    pre = bytearray()
    cbor._head(4, 4, pre)
    cbor._enc("MAC0", pre)
    cbor._enc(prot, pre)
    cbor._enc(b"", pre)
    cbor._head(2, len(payload), pre)
    return hmac(key, pre, payload)


def mac0(key, kid, payload):
    return bytes(mac0_into(key, kid, len(payload), lambda w: w.extend(payload)))


def mac0_into(key, kid, plen, write):
    """The COSE_Mac0 of a payload of plen bytes that write(w) puts into w (a cbor.Buf):
    the message's buffer is allocated once, at its exact size, before anything is written
    (a MemoryError leaves nothing behind), the payload is written in place and the MAC
    taken over it there, so a report is never held twice. Returns the bytearray; the
    bytes are mac0's, which the shared wire vectors check against Go."""
    unprot = cbor.enc({4: kid})
    w = cbor.Buf(6 + len(unprot) + cbor.hlen(plen) + plen + 34)
    cbor._head(6, 17, w)
    cbor._head(4, 4, w)
    cbor._enc(PROT_MAC0, w)
    w.extend(unprot)
    cbor._head(2, plen, w)
    p = w.i
    write(w)
    if w.i - p != plen:
        raise ValueError("payload is %d bytes, not %d" % (w.i - p, plen))
    cbor._enc(_mac(key, PROT_MAC0, w.m[p:w.i]), w)
    return w.b


def open_mac0(data, key):
    """Verify a COSE_Mac0 under key; return (kid, payload bytes) or raise BadMessage."""
    if len(data) > MAX:
        raise BadMessage("oversize")
    try:
        t = cbor.dec(data, maxlen=MAX)
    except Exception:
        raise BadMessage("malformed")
    if not isinstance(t, cbor.Tag) or t.n != 17:
        raise BadMessage("malformed")
    m = t.v
    if not isinstance(m, list) or len(m) != 4:
        raise BadMessage("malformed")
    prot, unprot, payload, tag = m
    if not isinstance(prot, bytes) or not isinstance(payload, bytes) or not isinstance(tag, bytes):
        raise BadMessage("malformed")
    if prot != PROT_MAC0:
        raise BadMessage("unsupported")
    if not isinstance(unprot, dict) or len(unprot) != 1 or not isinstance(unprot.get(4), bytes):
        raise BadMessage("malformed")
    if len(tag) != 32:
        raise BadMessage("malformed")
    if not ct_eq(_mac(key, prot, payload), tag):
        raise BadMessage("bad-mac")
    return unprot[4], payload


def sign1_payload(data):
    """The payload of a COSE_Sign1 (tag 18), unverified: the server checked the vendor
    signature before it MAC'd the token carrying it; the device has no Ed25519."""
    t = cbor.dec(data, maxlen=1 << 20, maxitems=1 << 16)
    if not isinstance(t, cbor.Tag) or t.n != 18 or not isinstance(t.v, list) or len(t.v) != 4:
        raise BadMessage("malformed")
    if not isinstance(t.v[2], bytes):
        raise BadMessage("malformed")
    return t.v[2]
