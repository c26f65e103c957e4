# Top-level manifest: everything comes through includes.
include("$(BOARD_DIR)/parts/base.py")
