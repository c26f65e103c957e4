# Internal storage for the evidence log and state slots: a folder on a power-fail-safe
# filesystem (littlefs on the MCU's internal flash). Every mutation is one call here, so a
# simulator can cut power at any of them (ports/sim.py).
import uos


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

    def truncate(self, name, n):
        data = self.read(name) or b""
        self.write(name + ".tmp", data[:n])
        self.rename(name + ".tmp", name)

    def rename(self, a, b):
        uos.rename(self.path(a), self.path(b))

    def remove(self, name):
        try:
            uos.remove(self.path(name))
        except OSError:
            pass
