# STM32 / pyboard adapter. Internal storage: /flash (littlefs on internal flash; keep it
# off USB MSC), or the state slots on a dedicated flash sector (slots=a block device).
# Tamper latch: an RTC backup register holds a secret; the RTC tamper input (TAMP1 = PC13)
# erases the backup registers in hardware, even on VBAT, so a missing secret means the
# enclosure was opened while unpowered (hardening guide §2.7). The RTC must be running
# (backup-domain write access), as MicroPython's RTC init leaves it.
import stm
import urandom
from fieldseal.ports.machineport import MachinePort
from fieldseal.store import FileStore, RawSlotStore, state_folder

RTC_BASE = 0x40002800
BKP0R = RTC_BASE + 0x50
MAGIC = 0x5EA1


class Port(MachinePort):
    EXT = "/sd"

    def __init__(self, slots=None, cover="X1", magnet=None, ext_writable=False):
        MachinePort.__init__(self, cover, magnet)
        root = state_folder("/flash")
        # slots: a block device over a dedicated flash sector outside the filesystem
        # (FIELDSEAL_STATE_FLASH_ADDR, hardening guide §9); without one, files in /flash
        self.store = RawSlotStore(root, slots) if slots else FileStore(root)
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

    def read_latch(self):
        # The secret lives in BKP0R: MAGIC in the top half, a random value below it.
        return (stm.mem32[BKP0R] >> 16) & 0xFFFF != MAGIC

    def clear_latch(self):
        stm.mem32[BKP0R] = (MAGIC << 16) | urandom.getrandbits(16)

    def wdt_start(self, ms=30000):
        MachinePort.wdt_start(self, ms)
