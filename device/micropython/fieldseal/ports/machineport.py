# What the MCU ports share: the cover switch on a machine.Pin with an IRQ that only counts,
# an optional magnet input, the reset cause and the watchdog.
import umachine as machine
from fieldseal.ports.base import BasePort


class MachinePort(BasePort):
    def __init__(self, cover, magnet=None, hard_irq=False):
        BasePort.__init__(self)
        self.pin = machine.Pin(cover, machine.Pin.IN, machine.Pin.PULL_UP)
        trig = machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING
        if hard_irq:
            self.pin.irq(self._irq, trig, hard=True)
        else:
            self.pin.irq(self._irq, trig)
        self.mag = machine.Pin(magnet, machine.Pin.IN) if magnet is not None else None
        self.wdt = None

    def reset_cause(self):
        causes = {machine.PWRON_RESET: "power-on", machine.WDT_RESET: "watchdog"}
        for name, label in (("HARD_RESET", "hard"), ("DEEPSLEEP_RESET", "deepsleep"), ("SOFT_RESET", "soft")):
            if hasattr(machine, name):
                causes[getattr(machine, name)] = label
        return causes.get(machine.reset_cause(), "")

    def cover_open(self):
        return self.pin.value() == 1

    def magnet(self):
        return 1 if self.mag and self.mag.value() else 0

    def wdt_start(self, ms=8000):
        self.wdt = machine.WDT(timeout=ms)

    def wdt_feed(self):
        if self.wdt:
            self.wdt.feed()
