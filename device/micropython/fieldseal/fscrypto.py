# SHA-256, HMAC-SHA-256 and a constant-time compare over the built-in uhashlib.
# micropython-lib's hmac is not built in and its digest() finalises built-in hashes, so
# HMAC is written out here (RFC 2104). "uhashlib" cannot be shadowed by a hashlib.py on
# storage (micropython-hardening.md A5).
from uhashlib import sha256



def H(*parts):
    h = sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def _pad(key):
    if len(key) > 64:
        key = H(key)
    k = bytearray(64)
    k[: len(key)] = key
    return k


def hmac(key, *parts):
    k = _pad(key)
    ik = bytearray(64)
    ok = bytearray(64)
    for i in range(64):
        ik[i] = k[i] ^ 0x36
        ok[i] = k[i] ^ 0x5C
    inner = sha256(ik)
    for p in parts:
        inner.update(p)
    outer = sha256(ok)
    outer.update(inner.digest())
    return outer.digest()


def ct_eq(a, b):
    """Compare two byte strings in time that depends only on their lengths."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0
