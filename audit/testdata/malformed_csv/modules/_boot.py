# Frozen _boot.py: the guard mounts and verifies everything before any other code runs.
import fieldseal.boot

fieldseal.boot.main()
