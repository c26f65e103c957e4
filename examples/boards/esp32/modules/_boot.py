# Frozen _boot.py for fieldseal boards: replaces the port's stock one. It runs before
# boot.py/main.py with Ctrl-C disabled; the guard mounts the filesystem itself,
# verifies it and sets sys.path (device/micropython/fieldseal/boot.py).
import sys

sys.path[:] = [".frozen"]  # before any other import: nothing on storage can shadow the guard (D23)
import fieldseal.boot

fieldseal.boot.main()
