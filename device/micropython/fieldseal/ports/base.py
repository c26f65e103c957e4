# What the guard needs from a port. Subclasses fill in pins, latches and storage.
import utime


class BasePort:
    FROZEN = ".frozen"  # sys.path entry of the frozen modules
    EXT = "/sd"  # where the application's files are (external storage)
    VERIFIED = "/verified"  # mount point of the verifying filesystem
    LOG_CAP = 12288

    def __init__(self):
        self.store = None  # a fieldseal.store.FileStore on internal storage
        # IRQ bookkeeping: the handler only increments ev[0]; the main loop drains it.
        self.ev = [0]

    def _irq(self, pin):
        # Runs in interrupt context: no allocation, no raising, nothing lost: a counter.
        self.ev[0] += 1

    def time(self):
        # unix seconds whatever the port's epoch (some bare-metal ports count from 2000)
        t = int(utime.time())
        return t + 946684800 if utime.gmtime(0)[0] == 2000 else t

    def ticks_ms(self):
        return utime.ticks_ms()

    def reset_cause(self):
        return ""

    def cover_open(self):
        """Level of the enclosure switch now: True when open."""
        return False

    def read_latch(self):
        """True when the hardware tamper latch says the enclosure was opened unpowered."""
        return False

    def clear_latch(self):
        pass

    def magnet(self):
        return 0

    def wdt_start(self, ms=30000):
        pass

    def wdt_feed(self):
        pass

    def sleep(self, s):
        utime.sleep(s)
