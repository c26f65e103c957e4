# Port adapters: internal storage, tamper inputs (cover switch, latch, magnet), clock and
# watchdog for each MicroPython port. pick() chooses the board's own adapter (a frozen
# module named fieldseal_port, as the qemu test board has) or one by sys.platform. There is
# no fallback: an image the guard does not know fails loudly (main() logs why and resets),
# and the simulator adapter (ports/sim.py) is for the harness only, never frozen.
import usys


def pick():
    try:
        import fieldseal_port as m

        return m.Port()
    except ImportError as e:
        if "fieldseal_port" not in str(e):
            raise
    p = usys.platform
    if p == "pyboard":
        from fieldseal.ports import stm32 as m
    elif p == "esp32":
        from fieldseal.ports import esp32 as m
    elif p == "rp2":
        from fieldseal.ports import rp2 as m
    else:
        raise RuntimeError("fieldseal: no port adapter for sys.platform %r (freeze a fieldseal_port module)" % p)
    return m.Port()
