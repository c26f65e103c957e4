# fieldseal's qemu board: the MPS2_AN385 (Cortex-M3) of the qemu port, run the way an stm32
# board runs: internal storage (littlefs) mounted at /flash and made the working directory,
# then the frozen boot file (MICROPY_BOARD_FROZEN_BOOT_FILE, Ctrl-C off), boot.py, main.py,
# and the REPL. Block devices are host files reached through ARM semihosting, so storage
# survives a reset (machine.reset() ends qemu) and a power cut (killing qemu).
# Build: make -C ports/qemu BOARD=FIELDSEAL_AN385 BOARD_DIR=<this folder> FROZEN_MANIFEST=...
include $(TOP)/ports/qemu/boards/MPS2_AN385/mpconfigboard.mk

MICROPY_VFS_LFS2 = 1

FIELDSEAL_BOOT_FILE ?= fsboot.py
CFLAGS += -DMICROPY_BOARD_FROZEN_BOOT_FILE='"$(FIELDSEAL_BOOT_FILE)"'

# The board's main() (fieldseal_board.c) replaces the port's: rename the port's one only.
SRC_C += $(BOARD_DIR)/fieldseal_board.c
$(BUILD)/main.o: CFLAGS += -Dmain=qemu_port_main
