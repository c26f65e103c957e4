module("fieldseal_boot.py")
