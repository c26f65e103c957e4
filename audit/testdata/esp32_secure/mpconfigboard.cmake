set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.usb
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
# compiler off: the REPL entry points main.c calls come from the board (examples/boards/norepl.c)
set(MICROPY_SOURCE_BOARD ${MICROPY_BOARD_DIR}/../../../examples/boards/norepl.c)
