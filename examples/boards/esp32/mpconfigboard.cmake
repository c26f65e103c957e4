# fieldseal hardened board template: ESP32-S3.
set(IDF_TARGET esp32s3)

# The port's base fragment first, then this board's security settings.
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
