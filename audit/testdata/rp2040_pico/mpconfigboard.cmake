# Pico-based meter controller (fieldseal audit fixture)
set(PICO_BOARD "pico")
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
# compiler off: the REPL entry points main.c calls come from the board (examples/boards/norepl.c)
set(MICROPY_SOURCE_BOARD ${MICROPY_BOARD_DIR}/../../../examples/boards/norepl.c)
set(MICROPY_HW_FLASH_STORAGE_BYTES 1441792)  # 1408 KiB
