# The simulator's port, driven by device/micropython/harness: a settable clock, cover level
# and IRQ, a hardware latch, and internal storage that can lose power at the k-th write
# (optionally after b bytes of it), as flash does.
from fieldseal.ports.base import BasePort
from fieldseal.store import FileStore


class PowerCut(BaseException):
    # BaseException: nothing in the guard or the app catches it, as nothing survives a cut.
    pass


class SimStore(FileStore):
    def __init__(self, root):
        FileStore.__init__(self, root)
        self.writes = 0
        self.cut_at = 0  # power fails during write number cut_at (counted from arming)
        self.cut_bytes = 0  # ... after this many bytes of it reached storage

    def arm(self, k, b=0):
        self.writes = 0
        self.cut_at = k
        self.cut_bytes = b

    def _tick(self):
        self.writes += 1
        return self.cut_at and self.writes == self.cut_at

    def write(self, name, data):
        if self._tick():
            old = self.read(name) or b""
            b = min(self.cut_bytes, len(data))
            FileStore.write(self, name, bytes(data[:b]) + old[b:])
            raise PowerCut()
        FileStore.write(self, name, data)

    def append(self, name, data):
        if self._tick():
            FileStore.append(self, name, bytes(data[: min(self.cut_bytes, len(data))]))
            raise PowerCut()
        FileStore.append(self, name, data)

    def rename(self, a, b):
        if self._tick():
            raise PowerCut()
        FileStore.rename(self, a, b)

    def remove(self, name):
        if self._tick():
            raise PowerCut()
        FileStore.remove(self, name)


class Port(BasePort):
    FROZEN = "/frozen"
    EXT = "/ext"
    VERIFIED = "/verified"

    def __init__(self, int_root="/int", now=1767225600, cover=False, latch=False, log_cap=12288):
        BasePort.__init__(self)
        self.store = SimStore(int_root)
        self.now = now
        self.cover = cover
        self.latch = latch
        self.mag = 0
        self.handler = None
        self.feeds = 0
        self.LOG_CAP = log_cap
        self.cause = "power-on"

    def time(self):
        return self.now

    def reset_cause(self):
        return self.cause

    def cover_open(self):
        return self.cover

    def read_latch(self):
        return self.latch

    def clear_latch(self):
        self.latch = False

    def magnet(self):
        return self.mag

    def set_cover(self, is_open):
        # the switch changes level, then the pin interrupt fires
        if self.cover != is_open:
            self.cover = is_open
            self._irq(None)

    def wdt_feed(self):
        self.feeds += 1

    def sleep(self, s):
        self.now += s
