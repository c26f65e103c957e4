# Frozen boot file: runs before boot.py, with Ctrl-C disabled.
import sys

sys.path[:] = [".frozen"]  # before any other import: nothing on storage can shadow the guard (D23)
import fieldseal.boot

fieldseal.boot.main()
