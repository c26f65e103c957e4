# Pico-based meter controller (fieldseal audit fixture)
set(PICO_BOARD "pico")
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
