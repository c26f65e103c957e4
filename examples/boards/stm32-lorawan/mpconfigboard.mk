# fieldseal hardened board template: STM32F4 with a LoRaWAN modem on UART 2, as the stm32
# template (../stm32/mpconfigboard.mk). Keep your board's LD_FILES/AF_FILE.
MCU_SERIES = f4
CMSIS_MCU = STM32F405xx
AF_FILE = boards/stm32f405_af.csv
LD_FILES = boards/stm32f405.ld boards/common_ifs.ld

# Only the frozen modules in this board's manifest: the guard, its LPWAN profile and the
# modem adapter; no port manifest, no networking.
FROZEN_MANIFEST ?= $(BOARD_DIR)/manifest.py
