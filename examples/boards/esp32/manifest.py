# fieldseal hardened manifest (esp32). Deliberately does NOT include
# $(PORT_DIR)/boards/manifest.py: that one freezes the stock _boot.py and requires
# bundle-networking (WebREPL, mip) (reference A11, §2.1). 

# Our _boot.py replaces the port's: it runs with Ctrl-C disabled (esp32/main.c:154) and
# mounts the flash filesystem with the port's block device helper.
module("_boot.py", base_path="$(BOARD_DIR)/modules")
module("flashbdev.py", base_path="$(PORT_DIR)/modules")

include("$(BOARD_DIR)/../guard.py")
module("_fieldseal_manifest.py", base_path="$(BOARD_DIR)/../../../dist")
