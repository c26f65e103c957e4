freeze("$(BOARD_DIR)/modules", "_boot.py")
package("fieldseal", base_path="$(BOARD_DIR)/guard")
module("_fieldseal_manifest.py", base_path="$(BOARD_DIR)/dist")
