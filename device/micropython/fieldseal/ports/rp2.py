# RP2040/RP2350 adapter. Internal storage: littlefs on rp2.Flash, or the state slots on a
# dedicated sector past the filesystem (slots=a block device). The flash is the external
# QSPI chip the firmware runs from: RP2040 cannot protect it (hardening guide). Tamper latch:
# an external flip-flop as on ESP32.
import umachine as machine
from fieldseal.ports.machineport import MachinePort
from fieldseal.store import FileStore, RawSlotStore, state_folder


class Port(MachinePort):
    # RP2 boards have no built-in SD driver: the application lives in /app on the flash
    # filesystem (external QSPI flash, so "external storage" in the threat model's sense)
    EXT = "/app"

    def __init__(self, slots=None, cover=2, latch=3, clear=4, magnet=None):
        MachinePort.__init__(self, cover, magnet, hard_irq=True)
        root = state_folder("/")
        self.store = RawSlotStore(root, slots) if slots else FileStore(root)
        self.latch = machine.Pin(latch, machine.Pin.IN)
        self.clr = machine.Pin(clear, machine.Pin.OUT, value=0)

    def read_latch(self):
        return self.latch.value() == 1

    def clear_latch(self):
        self.clr.value(1)
        self.clr.value(0)
