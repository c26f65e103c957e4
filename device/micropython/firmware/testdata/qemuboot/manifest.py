module("fsboot.py")
