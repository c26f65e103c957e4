module("fwprobe.py")
