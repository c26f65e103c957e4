# Guard first; deliberately no $(PORT_DIR)/boards/manifest.py (it brings WebREPL and mip).
module("_boot.py", base_path="$(BOARD_DIR)/modules")
module("flashbdev.py", base_path="$(BOARD_DIR)/modules")
package("fieldseal", base_path="$(BOARD_DIR)/../../../device/micropython")
module("_fieldseal_manifest.py", base_path="$(BOARD_DIR)/dist")
