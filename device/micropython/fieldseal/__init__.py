# fieldseal guard: frozen into the firmware, it verifies the application on external storage
# before anything of it runs, imports exactly the verified bytes, watches tamper inputs and
# keeps the forward-secure evidence log (FS-chain v1). Entry point: fieldseal.boot.main().
# Only MicroPython built-ins are imported, by their u-names, so nothing on storage can
# shadow them.
