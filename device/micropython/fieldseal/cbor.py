# Minimal deterministic CBOR (RFC 8949 core deterministic encoding) with decoding limits.
# Encodes: int, bytes/bytearray/memoryview, str, list/tuple, dict (keys sorted by their
# encoded bytes), None, bool, Tag. Decodes the same subset and rejects floats, indefinite
# lengths, non-shortest heads, duplicate map keys, trailing bytes and nesting beyond a limit.
from ustruct import pack_into


class Tag:
    def __init__(self, n, v):
        self.n = n
        self.v = v


class CBORError(ValueError):
    pass


def _head(mt, n, out):
    mt <<= 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out.append(n >> 8)
        out.append(n & 0xFF)
    elif n < 0x100000000:
        out.append(mt | 26)
        out.extend(n.to_bytes(4, "big"))
    elif n < 0x10000000000000000:
        out.append(mt | 27)
        out.extend(n.to_bytes(8, "big"))
    else:
        raise CBORError("int too large")


def hlen(n):
    """Bytes of the head _head writes for argument n (0 <= n < 2**64): a size, not an encoding."""
    return 1 if n < 24 else 2 if n < 0x100 else 3 if n < 0x10000 else 5 if n < 0x100000000 else 9


def _enc(v, out):
    # out is one bytearray for the whole item: few allocations (the guard runs in small heaps)
    if v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, int):
        if v >= 0:
            _head(0, v, out)
        else:
            _head(1, -1 - v, out)
    elif isinstance(v, (bytes, bytearray, memoryview)):
        _head(2, len(v), out)
        out.extend(v)
    elif isinstance(v, str):
        b = v.encode()
        _head(3, len(b), out)
        out.extend(b)
    elif isinstance(v, (list, tuple)):
        _head(4, len(v), out)
        for x in v:
            _enc(x, out)
    elif isinstance(v, dict):
        # deterministic order: by the encoded key's bytes
        keys = []
        for k in v:
            kb = bytearray()
            _enc(k, kb)
            keys.append((bytes(kb), k))
        keys.sort(key=_first)
        _head(5, len(keys), out)
        for kb, k in keys:
            out.extend(kb)
            _enc(v[k], out)
    elif isinstance(v, Tag):
        _head(6, v.n, out)
        _enc(v.v, out)
    else:
        raise CBORError("cannot encode")


def _first(kv):
    return kv[0]


def enc(v):
    out = bytearray()
    _enc(v, out)
    return bytes(out)


class Buf:
    """A CBOR output of a size known in advance: _head and _enc write into it as into a
    bytearray (append, extend), but nothing grows or moves (memoryview writes), so a
    large message (a report) costs one allocation of its exact size, not the repeated
    reallocations and fragments of a growing bytearray (D24). b is the buffer, i the
    write position."""

    def __init__(self, size):
        self.b = bytearray(size)
        self.m = memoryview(self.b)
        self.i = 0

    def append(self, x):
        self.m[self.i] = x
        self.i += 1

    def extend(self, v):
        # struct copies in C; a slice store (m[i:j] = v) costs ~15k instructions a call on
        # the Cortex-M3 build whatever the length, pack_into a tenth of that
        n = len(v)
        pack_into("%ds" % n, self.b, self.i, v)
        self.i += n


class _Dec:
    def __init__(self, b, maxdepth, maxitems):
        self.b = b
        self.i = 0
        self.maxdepth = maxdepth
        self.left = maxitems

    def _arg(self, ai):
        b = self.b
        i = self.i
        if ai < 24:
            return ai
        if ai == 24:
            n = 1
        elif ai == 25:
            n = 2
        elif ai == 26:
            n = 4
        elif ai == 27:
            n = 8
        else:
            raise CBORError("indefinite or reserved length")
        if i + n > len(b):
            raise CBORError("truncated")
        v = int.from_bytes(b[i:i + n], "big")
        self.i = i + n
        if (n == 1 and v < 24) or (n > 1 and v < (1 << (4 * n))):
            raise CBORError("non-shortest head")
        return v

    def item(self, depth):
        if depth > self.maxdepth:
            raise CBORError("too deep")
        self.left -= 1
        if self.left < 0:
            raise CBORError("too many items")
        b = self.b
        if self.i >= len(b):
            raise CBORError("truncated")
        ib = b[self.i]
        self.i += 1
        mt = ib >> 5
        ai = ib & 31
        if mt == 7:
            if ai == 20:
                return False
            if ai == 21:
                return True
            if ai == 22:
                return None
            raise CBORError("unsupported simple/float")
        n = self._arg(ai)
        if mt == 0:
            return n
        if mt == 1:
            return -1 - n
        if mt == 2 or mt == 3:
            j = self.i + n
            if j > len(b):
                raise CBORError("truncated")
            v = bytes(b[self.i:j])
            self.i = j
            if mt == 3:
                try:
                    return v.decode()
                except Exception:
                    raise CBORError("bad utf-8")
            return v
        if mt == 4:
            if n > self.left:
                raise CBORError("too many items")
            return [self.item(depth + 1) for _ in range(n)]
        if mt == 5:
            if 2 * n > self.left:
                raise CBORError("too many items")
            d = {}
            prev = None
            for _ in range(n):
                ks = self.i
                k = self.item(depth + 1)
                kb = bytes(b[ks:self.i])
                if prev is not None and kb <= prev:
                    raise CBORError("map keys not sorted or duplicated")
                prev = kb
                if isinstance(k, (list, dict)):
                    raise CBORError("unsupported map key")
                d[k] = self.item(depth + 1)
            return d
        # mt == 6
        return Tag(n, self.item(depth + 1))


def dec(b, maxdepth=16, maxitems=4096, maxlen=16384):
    """Decode exactly one item from b; raise CBORError on anything outside the subset."""
    if len(b) > maxlen:
        raise CBORError("oversize")
    d = _Dec(b, maxdepth, maxitems)
    v = d.item(0)
    if d.i != len(b):
        raise CBORError("trailing bytes")
    return v
