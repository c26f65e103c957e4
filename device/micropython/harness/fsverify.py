# FS-chain v1 verification in MicroPython, on the guard's own primitives: a port of Go's
# fschain.Verify (same check order, same failure names and sequence numbers), used to run
# the shared verify vectors through the Python implementation. Not frozen into devices.
from fieldseal import fschain as fc
from fieldseal.fscrypto import ct_eq


class VerifyError(Exception):
    def __init__(self, name, seq):
        self.name = name
        self.seq = seq


def verify(dev, epoch, a_n, a_head, a_key, seg, head_at=None):
    """seg = [first, [[n, t, type, payload, tag], ...], n, head, seal]; returns
    (n, head, next_key, fresh entry numbers) or raises VerifyError."""
    first, es, sn, shead, sseal = seg
    d = dev.encode()
    if sn < a_n:
        raise VerifyError("rollback", sn)
    last = a_n
    if es:
        if first == 0:
            raise VerifyError("reorder", 0)
        if first > a_n + 1:
            raise VerifyError("gap", a_n + 1)
        for j in range(len(es)):
            want = first + j
            got = es[j][0]
            if got != want:
                name = "reorder"
                if got > want and not any(e[0] == want for e in es[j + 1:]):
                    name = "gap"
                raise VerifyError(name, want)
        end = first + len(es) - 1
        if end > last:
            last = end
    if sn > last:
        raise VerifyError("gap", last + 1)
    if sn < last:
        raise VerifyError("head-mismatch", sn)
    j = 0
    prev = None
    while j < len(es) and es[j][0] <= a_n:
        n, t, typ, payload, tag = es[j]
        if prev is None:
            if n == 1:
                prev = fc.genesis(d, epoch)
            elif head_at:
                prev = head_at(n - 1)
        want = a_head if n == a_n else (head_at(n) if head_at else None)
        if prev is None:
            prev = want
            j += 1
            continue
        if len(tag) != 16 or len(payload) > fc.MAX_PAYLOAD:
            if want is not None:
                raise VerifyError("fork", n)
            prev = None
            j += 1
            continue
        h = fc.head(fc.entry_msg(d, epoch, n, t, typ, prev, payload), tag)
        if want is not None and not ct_eq(h, want):
            raise VerifyError("fork", n)
        prev = h
        j += 1
    fresh = es[j:]
    head, k = a_head, a_key
    for n, t, typ, payload, tag in fresh:
        if len(tag) != 16 or len(payload) > fc.MAX_PAYLOAD:
            raise VerifyError("forged-entry", n)
        msg = fc.entry_msg(d, epoch, n, t, typ, head, payload)
        if not ct_eq(fc.entry_tag(k, msg), tag):
            raise VerifyError("forged-entry", n)
        head = fc.head(msg, tag)
        k = fc.evolve(k)
    if len(shead) != 32 or not ct_eq(shead, head):
        raise VerifyError("head-mismatch", sn)
    if not ct_eq(sseal, fc.seal(k, d, epoch, sn, head)):
        raise VerifyError("bad-seal", sn)
    return sn, head, k, [e[0] for e in fresh]
