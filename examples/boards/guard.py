# The guard package for a production image (included by each board's manifest.py): every
# module of device/micropython/fieldseal except the host adapters — the simulator adapter,
# which must never be frozen into a device (it would accept a simulated clock, cover and
# latch), and the unix one. The uplink modules are needed by every board whose port has no
# send() of its own: boot imports fieldseal.uplink, and a missing module resets the device
# at every boot. TestGuardListFreezesEveryDeviceModule keeps this list complete.
freeze(
    "../../device/micropython",
    (
        "fieldseal/__init__.py",
        "fieldseal/boot.py",
        "fieldseal/cbor.py",
        "fieldseal/check.py",
        "fieldseal/cose.py",
        "fieldseal/device.py",
        "fieldseal/fschain.py",
        "fieldseal/fscrypto.py",
        "fieldseal/http.py",
        "fieldseal/lpwan.py",
        "fieldseal/mqtt.py",
        "fieldseal/store.py",
        "fieldseal/uplink.py",
        "fieldseal/ports/__init__.py",
        "fieldseal/ports/base.py",
        "fieldseal/ports/machineport.py",
        "fieldseal/ports/stm32.py",
        "fieldseal/ports/esp32.py",
        "fieldseal/ports/rp2.py",
    ),
)
