# ESP32 adapter. Internal storage: the log on the littlefs vfs partition, the state slots on
# the raw "fsstate" partition when present (enable flash encryption and mark both encrypted,
# hardening guide §2.6 and §9). No VBAT tamper-erase on ESP32: the
# latch is an external flip-flop (set by the cover switch on battery, read on LATCH_PIN,
# cleared by pulsing CLEAR_PIN); its state is mirrored in NVS so a reading survives reboots.
import esp32
import umachine as machine
import uos
from fieldseal.ports.base import BasePort
from fieldseal.store import FileStore, RawSlotStore


class Port(BasePort):
    EXT = "/sd"

    def __init__(self, cover=4, latch=5, clear=18, magnet=None, sd_slot=2, ext_writable=False):
        BasePort.__init__(self)
        try:
            uos.mkdir("/fieldseal")
        except OSError:
            pass
        # state slots on the raw, encrypted "fsstate" partition when the board has one
        # (examples/boards/esp32/partitions-fieldseal.csv), else on the filesystem
        parts = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="fsstate")
        self.store = RawSlotStore("/fieldseal", parts[0]) if parts else FileStore("/fieldseal")
        self.nvs = esp32.NVS("fieldseal")
        self.pin = machine.Pin(cover, machine.Pin.IN, machine.Pin.PULL_UP)
        self.pin.irq(self._irq, machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING)
        self.latch = machine.Pin(latch, machine.Pin.IN)
        self.clr = machine.Pin(clear, machine.Pin.OUT, value=0)
        self.mag = machine.Pin(magnet, machine.Pin.IN) if magnet is not None else None
        self.wdt = None
        self.mount_sd(sd_slot, ext_writable)

    def mount_sd(self, slot, writable):
        # the application's card, mounted by the guard, read-only unless erase is the policy
        import vfs

        try:
            vfs.mount(vfs.VfsFat(machine.SDCard(slot=slot)), self.EXT, readonly=not writable)
        except OSError:
            pass

    def reset_cause(self):
        return {machine.PWRON_RESET: "power-on", machine.HARD_RESET: "hard", machine.WDT_RESET: "watchdog",
                machine.DEEPSLEEP_RESET: "deepsleep", machine.SOFT_RESET: "soft"}.get(machine.reset_cause(), "")

    def cover_open(self):
        return self.pin.value() == 1

    def read_latch(self):
        hw = self.latch.value() == 1
        try:
            seen = self.nvs.get_i32("latch")
        except OSError:
            seen = 0
        if hw and not seen:
            self.nvs.set_i32("latch", 1)
            self.nvs.commit()
        return hw or bool(seen)

    def clear_latch(self):
        self.clr.value(1)
        self.clr.value(0)
        self.nvs.set_i32("latch", 0)
        self.nvs.commit()

    def magnet(self):
        return 1 if self.mag and self.mag.value() else 0

    def wdt_start(self, ms=30000):
        self.wdt = machine.WDT(timeout=ms)

    def wdt_feed(self):
        if self.wdt:
            self.wdt.feed()
