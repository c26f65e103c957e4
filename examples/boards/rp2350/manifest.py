# fieldseal hardened manifest (rp2350). Deliberately does NOT include
# $(PORT_DIR)/boards/manifest.py: it freezes the stock _boot.py, which reformats the
# filesystem when mounting fails (reference A9, §2.1). 
module("_boot.py", base_path="$(BOARD_DIR)/modules")
# rp2 (rp2.Flash, which _boot.py mounts, and PIO) is a frozen Python module over the built-in
# _rp2, frozen by the port's manifest that this one leaves out: freeze it by name, or the
# boot file's `import rp2` fails once sys.path holds only frozen modules.
module("rp2.py", base_path="$(PORT_DIR)/modules")
include("$(BOARD_DIR)/../guard.py")
module("_fieldseal_manifest.py", base_path="$(BOARD_DIR)/../../../dist")
