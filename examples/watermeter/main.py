# Water meter application: count pulses, keep the register, flag leaks.
#
# Importing this module does nothing but define things: the fieldseal guard imports it
# after verifying it and then calls run(). Hardware modules are imported inside functions
# so that the module also imports on ports without them (the WebAssembly port in tests).

import metrology
import leak

SAMPLE_SECONDS = 60


class FakePulses:
    """Pulse source for hosts without a reed switch: a fixed pulse count per sample."""

    def __init__(self, per_sample=2):
        self.per_sample = per_sample

    def take(self):
        return self.per_sample


class PinPulses:
    """Counts falling edges of the reed switch on a machine.Pin."""

    def __init__(self, pin_id):
        import machine

        self.count = 0
        self.pin = machine.Pin(pin_id, machine.Pin.IN, machine.Pin.PULL_UP)
        self.pin.irq(trigger=machine.Pin.IRQ_FALLING, handler=self._edge)

    def _edge(self, _pin):
        self.count += 1

    def take(self):
        n, self.count = self.count, 0
        return n


def pulse_source(pin_id=None):
    if pin_id is not None:
        try:
            return PinPulses(pin_id)
        except ImportError:
            pass
    return FakePulses()


def local_hour():
    try:
        import time

        return time.localtime()[3]
    except Exception:
        return 12


def sleep(seconds):
    import time

    time.sleep(seconds)


def step(register, detector, pulses, seconds=SAMPLE_SECONDS, hour=12):
    """One sample: update the register and the leak detector; returns the reading."""
    vol = register.add_pulses(pulses, seconds)
    detector.observe(hour, vol * 3600 / seconds)
    return {"litres": register.reading(), "leak": detector.leaking()}


def run(samples=None, pin_id=None, table=None, sleep_fn=sleep, report=None):
    """Main loop. samples=None runs forever; tests pass a small number."""
    if table is None:
        try:
            table = metrology.load_table()
        except OSError:
            table = metrology.DEFAULT_TABLE
    register = metrology.Register(table)
    detector = leak.NightFlow()
    source = pulse_source(pin_id)
    state = None
    n = 0
    while samples is None or n < samples:
        state = step(register, detector, source.take(), SAMPLE_SECONDS, local_hour())
        if report is not None:
            report(state)
        n += 1
        if samples is None or n < samples:
            sleep_fn(SAMPLE_SECONDS)
    return state
