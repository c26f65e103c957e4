# fieldseal hardened manifest (stm32). Paths assume the fieldseal repository
# layout: adjust base_path when you copy the board elsewhere.

# The guard package, without the simulator adapter (ports/sim.py is for the harness only).
include("$(BOARD_DIR)/../guard.py")

# The frozen boot file named by MICROPY_BOARD_FROZEN_BOOT_FILE.
module("fsboot.py", base_path="$(BOARD_DIR)")

# The signed manifest module emitted by `fieldseal build` into DIST/.
module("_fieldseal_manifest.py", base_path="$(BOARD_DIR)/../../../dist")

# Your own frozen boot.py/main.py and application modules go here, e.g.:
# freeze("app", ("main.py",))
