# The guard's adapter for the fieldseal qemu test board (FIELDSEAL_AN385), frozen as the
# module fieldseal_port (ports.pick() takes a board's own adapter first). Modelled on the
# stm32 one: internal storage on /flash (mounted by the board before the boot file), the
# application on its own littlefs volume mounted at /sd, optionally the state
# slots on a raw block device (bkpsram.img: the battery-backed SRAM / dedicated-sector
# path, RawSlotStore). Test hardware is a 512-byte host file, hw.img, that the test writes:
#   0..3 "FSHW" | 4 cover level | 5 latch | 6 magnet | 8..15 u64 now (unix s) | 16..19 u32
#   cover IRQ edges. Reports go out on the console as "FSREPORT <base64>" lines.
import hostblk
import ubinascii
import vfs
from fieldseal.ports.base import BasePort
from fieldseal.store import FileStore, RawSlotStore, state_folder


class Port(BasePort):
    EXT = "/sd"

    def __init__(self):
        BasePort.__init__(self)
        root = state_folder("/flash")
        try:
            slots = hostblk.BlockDev("bkpsram.img", 512)
        except OSError:
            slots = None
        self.store = RawSlotStore(root, slots) if slots else FileStore(root)
        self.hwdev = hostblk.BlockDev("hw.img", 512)
        self.hw = bytearray(512)
        self.t0 = 0
        try:
            # writable, as a board's SD card: the erase policy deletes there (D16), an app
            # writes its mutable files there; the guard itself reads it only
            vfs.mount(vfs.VfsLfs2(hostblk.BlockDev("sd.img", 4096)), self.EXT)
        except OSError as e:
            print("fieldseal_port: no application volume:", e)
        self._read()

    def _read(self):
        self.hwdev.readblocks(0, self.hw)
        if self.hw[0:4] != b"FSHW":
            raise OSError(5)
        self.ev[0] = int.from_bytes(self.hw[16:20], "big")

    def time(self):
        return int.from_bytes(self.hw[8:16], "big")

    def cover_open(self):
        self._read()
        return self.hw[4] == 1

    def read_latch(self):
        self._read()
        return self.hw[5] == 1

    def clear_latch(self):
        self._read()
        self.hw[5] = 0
        self.hwdev.writeblocks(0, self.hw)

    def magnet(self):
        return self.hw[6]

    def wdt_feed(self):
        self._read()

    def send(self, report):
        # base64 in pieces (768 bytes: a multiple of 3, so the pieces join into the whole's
        # encoding): a report as large as the heap allows is not copied whole once more
        m = memoryview(report)
        print("FSREPORT ", end="")
        for i in range(0, len(m), 768):
            print(ubinascii.b2a_base64(m[i:i + 768], newline=False).decode(), end="")
        print()
        return None
