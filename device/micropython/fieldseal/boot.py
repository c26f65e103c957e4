# Boot entry, frozen into the firmware and run first (stm32: MICROPY_BOARD_FROZEN_BOOT_FILE;
# esp32/rp2: frozen _boot.py calling fieldseal.boot.main()). See device/micropython/README.md.
# The board's boot file trims sys.path before importing this module (D23); this repeats it.
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


def run_app(d, mod, samples=None, sleep=None, uplink=None):
    """Run the application's run() with the guard in its loop: the app's sleep polls the
    guard once per second (tamper events, checks, reports), and the app's readings go into
    the reports. An app without run() just leaves the guard's loop running. Reports go out
    through uplink (a fieldseal.uplink.Uplink), else the port's send(report) -> answer."""
    p = d.port
    sent = []

    def guard_sleep(seconds):
        for _ in range(max(1, int(seconds))):
            r = d.poll()
            if r is not None:
                sent.append(r)
                if uplink is not None:
                    uplink.deliver(r)
                elif hasattr(p, "send"):
                    down = p.send(r)
                    if down:
                        d.ack(down)
            (sleep or p.sleep)(1)

    def on_reading(state):
        if isinstance(state, dict) and "litres" in state:
            d.reading = {1: int(state["litres"]), 2: 2 if state.get("leak") else 0}

    run = getattr(mod, "run", None)
    if run is None:
        while samples is None:
            guard_sleep(1)
        return sent
    try:
        run(samples=samples, sleep_fn=guard_sleep, report=on_reading)
    except TypeError:
        run()
    return sent


def send_now(d, uplink=None):
    """Build a report and send it now (used when the boot check failed: the evidence
    leaves before any application code runs, issue 12 item 10)."""
    p = d.port
    if uplink is not None:
        uplink.deliver(d.report())
    elif hasattr(p, "send"):
        down = p.send(d.report())
        if down:
            d.ack(down)


def failed(d, e):
    """Say why the guard gives up: the exception on the console, and a boot-failed entry in
    the log when the log is usable (the chain is loaded)."""
    try:
        usys.print_exception(e)
    except Exception:
        pass
    try:
        if d is not None and d.chain.s is not None:
            from fieldseal.device import BOOT_FAILED

            p = {1: type(e).__name__}
            if str(e):
                p[2] = str(e)[:120]
            d.log(BOOT_FAILED, p)
    except BaseException:
        pass  # the log itself is what failed: the console line is all there is


def main(app="main", port=None):
    """Never returns: boot, import the application from verified bytes only, then run it
    with the guard in its loop (tamper events, checks, reports). Any failure is shown and
    logged (boot-failed), then resets the device: MicroPython must never fall into the
    REPL (hardening guide A1, A2). Reports leave through port.uplink(d) when the port has
    one (a board's own link, e.g. a LoRaWAN modem), else port.send, else fieldseal.uplink."""
    try:
        import micropython

        micropython.kbd_intr(-1)
    except Exception:
        pass
    d = None
    try:
        from fieldseal.device import Device

        if port is None:
            from fieldseal import ports

            port = ports.pick()
        usys.path[:] = [port.FROZEN]
        d = Device(port)
        d.boot()
        up = None
        if hasattr(d.port, "uplink"):
            up = d.port.uplink(d)  # the board's own link, e.g. a LoRaWAN modem (examples/boards/stm32-lorawan)
        elif not hasattr(d.port, "send"):
            from fieldseal import uplink

            up = uplink.pick(d)  # the port's UPLINK, else the bundle's server URLs
        if d.bad:
            send_now(d, up)
        mod = None
        try:
            mod = __import__(app)
        except ImportError:
            pass  # refused or missing: logged by the verified filesystem; keep reporting
        if mod is None:
            run_app(d, None, uplink=up)
        else:
            run_app(d, mod, uplink=up)
            run_app(d, None, uplink=up)
    except Exception as e:
        failed(d, e)
    finally:
        try:
            import umachine as machine

            machine.reset()
        except ImportError:
            pass
