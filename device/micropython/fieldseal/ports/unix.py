# The unix port of MicroPython as a meter: internal storage and the application are host
# folders, the clock is the host's, the cover switch is a file holding "1" while open (as
# the Linux agent's FileCover). Used to run the guard, frozen into a real unix build,
# against a real server over real sockets; not a hardware port (no latch, no watchdog).
import uos
from fieldseal.ports.base import BasePort
from fieldseal.store import FileStore


class Port(BasePort):
    def __init__(self, int_root, ext, verified="/verified", uplink=None, cover_file=None, frozen=".frozen",
                 topic_root=None):
        BasePort.__init__(self)
        try:
            uos.mkdir(int_root)
        except OSError:
            pass
        self.store = FileStore(int_root)
        self.EXT = ext
        self.VERIFIED = verified
        self.FROZEN = frozen
        self.UPLINK = uplink  # None: the server URLs from the provisioning bundle
        self.TOPIC_ROOT = topic_root  # None: the bundle's topic root (absent there: fieldseal/v1)
        self.cover_file = cover_file

    def reset_cause(self):
        return "power-on"

    def cover_open(self):
        if not self.cover_file:
            return False
        try:
            with open(self.cover_file) as f:
                return f.read().strip() == "1"
        except OSError:
            return False
