# The guard package for a production image (included by each board's manifest.py): every
# module of device/micropython/fieldseal except the simulator adapter, which must never be
# frozen into a device (it would accept a simulated clock, cover and latch).
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
        "fieldseal/store.py",
        "fieldseal/ports/__init__.py",
        "fieldseal/ports/base.py",
        "fieldseal/ports/machineport.py",
        "fieldseal/ports/stm32.py",
        "fieldseal/ports/esp32.py",
        "fieldseal/ports/rp2.py",
    ),
)
