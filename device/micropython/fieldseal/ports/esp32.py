# ESP32 adapter. Internal storage: the log on the littlefs vfs partition, the state slots on
# the raw "fsstate" partition when present (enable flash encryption and mark both encrypted,
# hardening guide §2.6 and §9). No VBAT tamper-erase on ESP32: the latch is an external
# flip-flop (set by the cover switch on battery, read on `latch`, cleared by pulsing
# `clear`); a reading is mirrored in NVS so it survives until a clear token.
import esp32
import umachine as machine
from fieldseal.ports.machineport import MachinePort
from fieldseal.store import FileStore, RawSlotStore, state_folder


class Port(MachinePort):
    EXT = "/sd"

    def __init__(self, cover=4, latch=5, clear=18, magnet=None, sd_slot=2, ext_writable=False):
        MachinePort.__init__(self, cover, magnet)
        root = state_folder("/")
        # state slots on the raw, encrypted "fsstate" partition when the board has one
        # (examples/boards/esp32/partitions-fieldseal.csv), else on the filesystem
        parts = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="fsstate")
        self.store = RawSlotStore(root, parts[0]) if parts else FileStore(root)
        self.nvs = esp32.NVS("fieldseal")
        self.latch = machine.Pin(latch, machine.Pin.IN)
        self.clr = machine.Pin(clear, machine.Pin.OUT, value=0)
        self.mount_sd(sd_slot, ext_writable)

    def mount_sd(self, slot, writable):
        # the application's card, mounted by the guard, read-only unless erase is the policy
        import vfs

        try:
            vfs.mount(vfs.VfsFat(machine.SDCard(slot=slot)), self.EXT, readonly=not writable)
        except OSError:
            pass

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

    def wdt_start(self, ms=30000):
        MachinePort.wdt_start(self, ms)

    def network_up(self):
        """Wi-Fi for the uplink (fieldseal.uplink), credentials from wifi.json on internal
        storage ({"ssid": ..., "key": ...}, written at provisioning). Starts connecting and
        returns whether the link is up; the uplink retries with backoff until it is."""
        import network
        import ujson

        wlan = network.WLAN(network.STA_IF)
        if wlan.isconnected():
            return True
        raw = self.store.read("wifi.json")
        if not raw:
            return False  # Ethernet boards: return LAN().isconnected() here instead
        cfg = ujson.loads(raw)
        wlan.active(True)
        if wlan.status() != network.STAT_CONNECTING:
            wlan.connect(cfg["ssid"], cfg["key"])
        return wlan.isconnected()
