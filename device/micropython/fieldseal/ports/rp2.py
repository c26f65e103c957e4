# RP2040/RP2350 adapter. Internal storage: littlefs on rp2.Flash (the same external QSPI
# chip as the firmware: RP2040 cannot protect it, see the hardening guide). Tamper latch:
# an external flip-flop as on ESP32.
import umachine as machine
import uos
from fieldseal.ports.base import BasePort
from fieldseal.store import FileStore, RawSlotStore


class Port(BasePort):
    # RP2 boards have no built-in SD driver: the application lives in /app on the flash
    # filesystem (external QSPI flash, so "external storage" in the threat model's sense)
    EXT = "/app"

    def __init__(self, slots=None, cover=2, latch=3, clear=4, magnet=None):
        BasePort.__init__(self)
        try:
            uos.mkdir("/fieldseal")
        except OSError:
            pass
        # slots: a block device over a dedicated flash sector past the filesystem
        # (FIELDSEAL_STATE_FLASH_ADDR, hardening guide §9); without one, files in /fieldseal
        self.store = RawSlotStore("/fieldseal", slots) if slots else FileStore("/fieldseal")
        self.pin = machine.Pin(cover, machine.Pin.IN, machine.Pin.PULL_UP)
        self.pin.irq(self._irq, machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING, hard=True)
        self.latch = machine.Pin(latch, machine.Pin.IN)
        self.clr = machine.Pin(clear, machine.Pin.OUT, value=0)
        self.mag = machine.Pin(magnet, machine.Pin.IN) if magnet is not None else None
        self.wdt = None

    def reset_cause(self):
        return {machine.PWRON_RESET: "power-on", machine.WDT_RESET: "watchdog"}.get(machine.reset_cause(), "")

    def cover_open(self):
        return self.pin.value() == 1

    def read_latch(self):
        return self.latch.value() == 1

    def clear_latch(self):
        self.clr.value(1)
        self.clr.value(0)

    def magnet(self):
        return 1 if self.mag and self.mag.value() else 0

    def wdt_start(self, ms=8000):
        self.wdt = machine.WDT(timeout=ms)

    def wdt_feed(self):
        if self.wdt:
            self.wdt.feed()
