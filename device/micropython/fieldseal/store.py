# Internal storage for the evidence log and state slots: a folder on a power-fail-safe
# filesystem (littlefs on the MCU's internal flash). Every mutation is one call here, so a
# simulator can cut power at any of them (ports/sim.py).
import uos

FOLDER = ".fieldseal"  # not an identifier: no import can ever resolve to it (D23)


def state_folder(parent):
    """The guard's storage folder under parent (e.g. /flash/.fieldseal), created if needed.
    Older releases used parent/fieldseal, which shadowed the frozen package on ports whose
    sys.path starts with the working directory: it is renamed once, keeping log and slots."""
    new = parent.rstrip("/") + "/" + FOLDER
    try:
        uos.stat(new)
        return new
    except OSError:
        pass
    try:
        uos.rename(parent.rstrip("/") + "/fieldseal", new)
    except OSError:
        uos.mkdir(new)
    return new


class FileStore:
    def __init__(self, root):
        self.root = root

    def path(self, name):
        return self.root + "/" + name

    def read(self, name):
        try:
            with open(self.path(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)

    def append(self, name, data):
        with open(self.path(name), "ab") as f:
            f.write(data)

    def open(self, name):
        """The file for reading (streamed, so memory does not grow with it), or None."""
        try:
            return open(self.path(name), "rb")
        except OSError:
            return None

    def size(self, name):
        try:
            return uos.stat(self.path(name))[6]
        except OSError:
            return 0

    def copy(self, name, dst, start, end):
        """dst := bytes start..end of name, copied in small pieces (one write, then appends:
        each is a separate step for a power cut), then nothing else is touched."""
        self.write(dst, b"")
        f = self.open(name)
        if f is None:
            return
        buf = bytearray(256)
        mv = memoryview(buf)
        with f:
            f.seek(start)
            left = end - start
            while left > 0:
                k = f.readinto(mv[: min(left, len(buf))])
                if not k:
                    break
                self.append(dst, mv[:k])
                left -= k

    def truncate(self, name, n):
        self.copy(name, name + ".tmp", 0, n)
        self.rename(name + ".tmp", name)

    def rename(self, a, b):
        uos.rename(self.path(a), self.path(b))

    def remove(self, name):
        try:
            uos.remove(self.path(name))
        except OSError:
            pass


class RawSlotStore(FileStore):
    """A FileStore whose two state slots live on raw blocks of a block device (an esp32
    Partition, a dedicated flash sector) instead of a file: erasing the older slot then
    really erases the previous chain key, where a wear-levelling filesystem would keep a
    stale copy (fschain.md, "Note for hardware ports"). The log stays in root."""

    SLOT_BYTES = 2048

    def __init__(self, root, bdev):
        FileStore.__init__(self, root)
        self.bdev = bdev
        self.bs = bdev.ioctl(5, 0) or 4096  # block size
        self.per = max(1, (self.SLOT_BYTES + self.bs - 1) // self.bs)
        if bdev.ioctl(4, 0) < 2 * self.per:  # block count
            raise ValueError("slot device too small")

    @staticmethod
    def _slot(name):
        return 0 if name == "slot-a" else (1 if name == "slot-b" else -1)

    def _erase(self, i):
        for j in range(self.per):
            self.bdev.ioctl(6, i * self.per + j)

    def read(self, name):
        i = self._slot(name)
        if i < 0:
            return FileStore.read(self, name)
        buf = bytearray(self.per * self.bs)
        self.bdev.readblocks(i * self.per, buf)
        return bytes(buf)

    def write(self, name, data):
        i = self._slot(name)
        if i < 0:
            return FileStore.write(self, name, data)
        if len(data) > self.per * self.bs:
            raise ValueError("state too large for its slot")
        buf = bytearray(data)
        buf.extend(b"\xff" * (self.per * self.bs - len(data)))  # the rest stays erased
        self._erase(i)
        self.bdev.writeblocks(i * self.per, buf)

    def remove(self, name):
        i = self._slot(name)
        if i < 0:
            return FileStore.remove(self, name)
        self._erase(i)
