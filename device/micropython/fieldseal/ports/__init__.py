# Port adapters: internal storage, tamper inputs (cover switch, latch, magnet), clock and
# watchdog for each MicroPython port. pick() chooses by sys.platform.
import usys


def pick():
    p = usys.platform
    if p == "pyboard":
        from fieldseal.ports import stm32 as m
    elif p == "esp32":
        from fieldseal.ports import esp32 as m
    elif p == "rp2":
        from fieldseal.ports import rp2 as m
    else:
        from fieldseal.ports import sim as m
    return m.Port()
