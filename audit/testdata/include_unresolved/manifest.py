module("fsboot.py", base_path="$(BOARD_DIR)")
# vendor manifest kept in a MicroPython tree the audit does not have
include("$(MPY_DIR)/vendor/acme/manifest.py")
