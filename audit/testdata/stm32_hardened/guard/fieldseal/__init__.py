# stand-in for device/micropython/fieldseal in audit tests
