include("more")  # a directory: more/manifest.py, relative to this file
module("fsboot.py", base_path="$(BOARD_DIR)")
