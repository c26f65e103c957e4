# A samd board: the audit refuses it (samd forces a 1200-baud bootloader jump it does not model).
MCU_SERIES = SAMD21
CMSIS_MCU = SAMD21G18A
