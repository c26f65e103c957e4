# fieldseal hardened board template: RP2350 (Pico 2 class), ARM secure mode.
set(PICO_BOARD "pico2")
set(PICO_PLATFORM "rp2350-arm-s")

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)

# MicroPython's rp2 port has no signing step: sign firmware.elf yourself, e.g.
#   picotool seal --sign firmware.elf firmware-signed.elf signing-key.pem otp.json
# and provision OTP from otp.json (reference §2.6).
