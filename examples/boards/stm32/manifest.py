# fieldseal hardened manifest (stm32). Paths assume the fieldseal repository layout:
# adjust base_path when you copy the board elsewhere.

# The guard package (device/micropython/fieldseal).
package("fieldseal", base_path="$(BOARD_DIR)/../../../device/micropython")

# The frozen boot file named by MICROPY_BOARD_FROZEN_BOOT_FILE.
module("fieldseal_boot.py", base_path="$(BOARD_DIR)")

# The signed manifest module emitted by `fieldseal build` into DIST/.
module("_fieldseal_manifest.py", base_path="$(BOARD_DIR)/../../../dist")

# Your own frozen boot.py/main.py and application modules go here, e.g.:
# freeze("$(BOARD_DIR)/app", ("main.py",))
