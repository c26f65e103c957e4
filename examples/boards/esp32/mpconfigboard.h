// fieldseal hardened board template: ESP32-S3, MicroPython 1.29.
// `fieldseal audit examples/boards/esp32` reports every check closed.
#define MICROPY_HW_BOARD_NAME               "fieldseal-esp32s3"
#define MICROPY_HW_MCU_NAME                 "ESP32S3"

// D17/D19/D20: no USB device stack at all: no USB CDC REPL, no MSC, and no DTR/RTS
// or 1200-baud jump into the ROM loader (A1, A8, A10, §2.2). MICROPY_HW_ENABLE_USBDEV (0)
// is what closes the DTR/RTS jump: with USB device on, ports/esp32/mpconfigport.h:271-273
// #defines MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER (1) without #ifndef, so a board's (0)
// is overridden. Do not turn USB device back on in a hardened build.
#define MICROPY_HW_ENABLE_USBDEV            (0)
#define MICROPY_HW_USB_CDC                  (0)
#define MICROPY_HW_USB_MSC                  (0)
#define MICROPY_HW_USB_CDC_1200BPS_TOUCH    (0)
// D17: no UART0 or USB-Serial/JTAG REPL either (A1, §2.2).
#define MICROPY_HW_ENABLE_UART_REPL         (0)
#define MICROPY_HW_ESP_USB_SERIAL_JTAG      (0)

// D17: no compiler (§2.2).
#define MICROPY_ENABLE_COMPILER             (0)

// A7: no native code. The port #defines MICROPY_EMIT_XTENSAWIN / MICROPY_EMIT_RV32 (1)
// without #ifndef (ports/esp32/mpconfigport.h:42-52): a board's (0) is ignored ("redefined"
// warning), so do not define them here. No native .mpy loading, and no compiler (above), so
// @micropython.native/viper/asm_* source never reaches the emitters.
#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)

// A9: no raw memory access from Python.
#define MICROPY_PY_MACHINE_MEMX             (0)
#define MICROPY_PY_UCTYPES                  (0)
