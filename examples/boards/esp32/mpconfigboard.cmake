# fieldseal hardened board template: ESP32-S3.
set(IDF_TARGET esp32s3)

# The port's base fragment first, then this board's security settings.
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)

# MICROPY_ENABLE_COMPILER (0) leaves ports/esp32/main.c's REPL calls without a definition:
# ../norepl.c provides them (no REPL: they soft-reset). Adjust the path with the manifest's.
set(MICROPY_SOURCE_BOARD ${MICROPY_BOARD_DIR}/../norepl.c)
