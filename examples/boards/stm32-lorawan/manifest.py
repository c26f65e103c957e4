# fieldseal hardened manifest (stm32 with a LoRaWAN modem). Paths assume the fieldseal
# repository layout: adjust base_path when you copy the board elsewhere.

# The guard package, without the simulator adapter. It includes the guard's LPWAN profile
# (fieldseal/lpwan.py, frames of at most 51 bytes), which the modem adapter speaks: freezing
# it here again would define its frozen module twice (the firmware does not compile).
include("$(BOARD_DIR)/../guard.py")

# The modem adapter: the RUI3 AT dialect and the LoRaWAN uplink (modules/lorawan_modem.py).
module("lorawan_modem.py", base_path="$(BOARD_DIR)/modules")

# The frozen boot file named by MICROPY_BOARD_FROZEN_BOOT_FILE (in ../stm32/mpconfigboard.h).
module("fsboot.py", base_path="$(BOARD_DIR)")

# The signed manifest module emitted by `fieldseal build` into DIST/.
module("_fieldseal_manifest.py", base_path="$(BOARD_DIR)/../../../dist")
