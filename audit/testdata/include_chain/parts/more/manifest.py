package(
    "fieldseal",
    base_path="$(BOARD_DIR)/../stm32_hardened/guard",
)
module("_fieldseal_manifest.py", base_path="../../dist")
