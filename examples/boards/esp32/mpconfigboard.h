// fieldseal hardened board template: ESP32-S3, MicroPython 1.29.
// `fieldseal audit examples/boards/esp32` reports every check closed.
#define MICROPY_HW_BOARD_NAME               "fieldseal-esp32s3"
#define MICROPY_HW_MCU_NAME                 "ESP32S3"

// D17: no REPL transport: UART0, USB OTG CDC and USB-Serial/JTAG all off (A1, §2.2).
#define MICROPY_HW_ENABLE_UART_REPL         (0)
#define MICROPY_HW_ENABLE_USBDEV            (0)
#define MICROPY_HW_USB_CDC                  (0)
#define MICROPY_HW_USB_MSC                  (0)
#define MICROPY_HW_ESP_USB_SERIAL_JTAG      (0)
// D20: no DTR/RTS or 1200-baud jump into the ROM loader (A8).
#define MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER (0)
#define MICROPY_HW_USB_CDC_1200BPS_TOUCH    (0)

// D17: no compiler (§2.2).
#define MICROPY_ENABLE_COMPILER             (0)

// A7: no native code.
#define MICROPY_EMIT_XTENSAWIN              (0)
#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)

// A9: no raw memory access from Python.
#define MICROPY_PY_MACHINE_MEMX             (0)
#define MICROPY_PY_UCTYPES                  (0)
