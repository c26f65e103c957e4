# Frozen _boot.py: the guard mounts and verifies everything before any other code runs.
import sys

sys.path[:] = [".frozen"]  # before any other import: nothing on storage can shadow the guard (D23)
import fieldseal.boot

fieldseal.boot.main()
