# STM32 / pyboard adapter. Internal storage: /flash (littlefs on internal flash; keep it
# off USB MSC). Tamper latch: an RTC backup register holds a per-boot secret; the RTC
# tamper input (TAMP1 = PC13) erases the backup registers in hardware, even on VBAT, so a
# missing secret means the enclosure was opened while unpowered (hardening guide §2.7).
import umachine as machine
import stm
import uos
import urandom
from fieldseal.ports.base import BasePort
from fieldseal.store import FileStore, RawSlotStore

RTC_BASE = 0x40002800
BKP0R = RTC_BASE + 0x50
MAGIC = 0x5EA1


class Port(BasePort):
    EXT = "/sd"

    def __init__(self, slots=None, cover="X1", magnet=None, ext_writable=False):
        BasePort.__init__(self)
        try:
            uos.mkdir("/flash/fieldseal")
        except OSError:
            pass
        # slots: a block device over a dedicated flash sector outside the filesystem
        # (FIELDSEAL_STATE_FLASH_ADDR, hardening guide §9); without one, files in /flash
        self.store = RawSlotStore("/flash/fieldseal", slots) if slots else FileStore("/flash/fieldseal")
        self.pin = machine.Pin(cover, machine.Pin.IN, machine.Pin.PULL_UP)
        self.pin.irq(self._irq, machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING)
        self.mag = machine.Pin(magnet, machine.Pin.IN) if magnet else None
        self.wdt = None
        self.mount_sd(ext_writable)

    def mount_sd(self, writable):
        # Boards are built with MICROPY_HW_SDCARD_MOUNT_AT_BOOT (0) (never on sys.path, never
        # the cwd, hardening guide A4); the guard mounts the card itself, read-only unless the
        # manifest's erase policy needs to write.
        import pyb
        import vfs

        try:
            vfs.mount(vfs.VfsFat(pyb.SDCard()), self.EXT, readonly=not writable)
        except OSError:
            pass  # no card, or already mounted: every file then shows up as missing

    def reset_cause(self):
        return {machine.PWRON_RESET: "power-on", machine.HARD_RESET: "hard", machine.WDT_RESET: "watchdog",
                machine.DEEPSLEEP_RESET: "deepsleep", machine.SOFT_RESET: "soft"}.get(machine.reset_cause(), "")

    def cover_open(self):
        return self.pin.value() == 1

    def read_latch(self):
        # The secret lives in BKP0R: MAGIC in the top half, a random value below it.
        return (stm.mem32[BKP0R] >> 16) & 0xFFFF != MAGIC

    def clear_latch(self):
        stm.mem32[BKP0R] = (MAGIC << 16) | (urandom.getrandbits(16))

    def magnet(self):
        return 1 if self.mag and self.mag.value() else 0

    def wdt_start(self, ms=30000):
        self.wdt = machine.WDT(timeout=ms)

    def wdt_feed(self):
        if self.wdt:
            self.wdt.feed()
