# Frozen boot file (MICROPY_BOARD_FROZEN_BOOT_FILE "fsboot.py", from the stm32 template):
# runs first, before boot.py, with Ctrl-C disabled.
# First statement: sys is a built-in that no file can shadow; trimming sys.path before any
# other import means nothing on /flash can stand in for the guard or the modem adapter (D23).
import sys; sys.path[:] = [".frozen"]  # noqa: E702

import fieldseal.boot
from fieldseal.ports.stm32 import Port
from lorawan_modem import LoRaWANUplink, Rui3


class LoRaWANPort(Port):
    """The stm32 adapter whose reports leave through the LoRaWAN modem on UART 2: the guard
    calls uplink(d) once booted (fieldseal/boot.py) instead of using the bundle's URLs."""

    def uplink(self, d):
        from machine import UART

        return LoRaWANUplink(d, Rui3(UART(2, 115200, timeout=0), feed=self.wdt_feed))


fieldseal.boot.main(port=LoRaWANPort())
