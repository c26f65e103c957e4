// ESP32-S3 field board, hardened (fieldseal audit fixture).
#define MICROPY_HW_BOARD_NAME               "FS-S3-SEALED"
#define MICROPY_HW_MCU_NAME                 "ESP32S3"

#define MICROPY_HW_ENABLE_UART_REPL         (0)
#define MICROPY_HW_ENABLE_USBDEV            (0)
#define MICROPY_HW_USB_CDC                  (0)
#define MICROPY_HW_ESP_USB_SERIAL_JTAG      (0)
#define MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER (0)

#define MICROPY_ENABLE_COMPILER             (0)
// Ignored on esp32 (kept so the fixture covers it): ports/esp32/mpconfigport.h:51-52
// redefines it (1) without #ifndef, GCC warns "redefined". Native code is closed by
// MICROPY_ENABLE_COMPILER (0) and MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0).
#define MICROPY_EMIT_XTENSAWIN              (0)
#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)
#define MICROPY_PY_MACHINE_MEMX             (0)
#define MICROPY_PY_UCTYPES                  (0)
