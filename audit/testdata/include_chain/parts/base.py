include("more")  # a directory: more/manifest.py, relative to this file
module("fieldseal_boot.py", base_path="$(BOARD_DIR)")
