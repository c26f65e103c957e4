# Minimal deterministic CBOR (RFC 8949 core deterministic encoding) with decoding limits.
# Encodes: int, bytes/bytearray/memoryview, str, list/tuple, dict (keys sorted by their
# encoded bytes), None, bool, Tag. Decodes the same subset and rejects floats, indefinite
# lengths, non-shortest heads, duplicate map keys, trailing bytes and nesting beyond a limit.


class Tag:
    def __init__(self, n, v):
        self.n = n
        self.v = v


class CBORError(ValueError):
    pass


def _head(mt, n):
    mt <<= 5
    if n < 24:
        return bytes((mt | n,))
    if n < 0x100:
        return bytes((mt | 24, n))
    if n < 0x10000:
        return bytes((mt | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((mt | 26,)) + n.to_bytes(4, "big")
    if n < 0x10000000000000000:
        return bytes((mt | 27,)) + n.to_bytes(8, "big")
    raise CBORError("int too large")


def _enc(v, out):
    if v is None:
        out.append(b"\xf6")
    elif v is True:
        out.append(b"\xf5")
    elif v is False:
        out.append(b"\xf4")
    elif isinstance(v, int):
        if v >= 0:
            out.append(_head(0, v))
        else:
            out.append(_head(1, -1 - v))
    elif isinstance(v, (bytes, bytearray, memoryview)):
        out.append(_head(2, len(v)))
        out.append(bytes(v))
    elif isinstance(v, str):
        b = v.encode()
        out.append(_head(3, len(b)))
        out.append(b)
    elif isinstance(v, (list, tuple)):
        out.append(_head(4, len(v)))
        for x in v:
            _enc(x, out)
    elif isinstance(v, dict):
        items = []
        for k, x in v.items():
            if isinstance(k, int) and k >= 0 and k is not True and k is not False:
                kb = _head(0, k)
            elif isinstance(k, str):
                kb = k.encode()
                kb = _head(3, len(kb)) + kb
            else:
                kb = enc(k)
            items.append((kb, x))
        items.sort(key=_first)  # deterministic order: by the encoded key's bytes
        out.append(_head(5, len(items)))
        for k, x in items:
            out.append(k)
            _enc(x, out)
    elif isinstance(v, Tag):
        out.append(_head(6, v.n))
        _enc(v.v, out)
    else:
        raise CBORError("cannot encode")


def _first(kv):
    return kv[0]


def enc(v):
    out = []
    _enc(v, out)
    return b"".join(out)


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
