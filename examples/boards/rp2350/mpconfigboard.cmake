# fieldseal hardened board template: RP2350 (Pico 2 class), ARM secure mode.
set(PICO_BOARD "pico2")
set(PICO_PLATFORM "rp2350-arm-s")

# The filesystem size goes here, not in mpconfigboard.h: ports/rp2/CMakeLists.txt passes it to
# the linker (__micropy_flash_storage_bytes__, the FLASH/FLASH_FS regions) and as -D to the
# C code; a header-only define still links, but leaves the linker's regions without a length,
# so nothing stops the firmware from growing into the filesystem.
set(MICROPY_HW_FLASH_STORAGE_BYTES 2883584)  # 2816 KiB of the 4 MiB flash

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)

# MicroPython's rp2 port has no signing step: sign firmware.elf yourself, e.g.
#   picotool seal --sign firmware.elf firmware-signed.elf signing-key.pem otp.json
# and provision OTP from otp.json (reference §2.6).

# MICROPY_ENABLE_COMPILER (0) leaves ports/rp2/main.c's REPL calls without a definition:
# ../norepl.c provides them (no REPL: they soft-reset). Adjust the path with the manifest's.
set(MICROPY_SOURCE_BOARD ${MICROPY_BOARD_DIR}/../norepl.c)
