# fieldseal hardened manifest (rp2350). Deliberately does NOT include
# $(PORT_DIR)/boards/manifest.py: it freezes the stock _boot.py, which reformats the
# filesystem when mounting fails (reference A9, §2.1). 
module("_boot.py", base_path="$(BOARD_DIR)/modules")
include("$(BOARD_DIR)/../guard.py")
module("_fieldseal_manifest.py", base_path="$(BOARD_DIR)/../../../dist")
