# Boot entry, frozen into the firmware and run first (stm32: MICROPY_BOARD_FROZEN_BOOT_FILE;
# esp32/rp2: frozen _boot.py calling fieldseal.boot.main()). See device/micropython/README.md.
import usys

# Before any further import: frozen modules only. Nothing on storage can shadow a module
# the guard uses (micropython-hardening.md A5).
usys.path[:] = [".frozen"]


def start(port=None):
    """Boot the guard on a port (default: chosen by sys.platform); returns the Device with
    the verified filesystem mounted and sys.path = [frozen, /verified]."""
    from fieldseal.device import Device

    if port is None:
        from fieldseal import ports

        port = ports.pick()
    usys.path[:] = [port.FROZEN]
    d = Device(port)
    d.boot()
    return d


def main(app="main", port=None):
    """Never returns: boot, import the application from verified bytes only, then run the
    main loop (tamper events, checks, reports). Any failure resets the device: MicroPython
    must never fall into the REPL (hardening guide A1, A2)."""
    try:
        import micropython

        micropython.kbd_intr(-1)
    except Exception:
        pass
    try:
        d = start(port)
        try:
            __import__(app)
        except ImportError as e:
            # refused or missing: logged by the VFS; the guard keeps reporting
            pass
        p = d.port
        while True:
            r = d.poll()
            if r is not None:
                down = p.send(r) if hasattr(p, "send") else None
                if down:
                    d.ack(down)
            p.sleep(1)
    finally:
        try:
            import machine

            machine.reset()
        except ImportError:
            pass
