# Only what the device needs; no port manifest, no networking bundles.
package("fieldseal", base_path="$(BOARD_DIR)/guard")
module("fsboot.py", base_path="$(BOARD_DIR)")
module("_fieldseal_manifest.py", base_path="$(BOARD_DIR)/dist")
