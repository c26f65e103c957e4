// fieldseal hardened board template: RP2350, MicroPython 1.29.
// `fieldseal audit examples/boards/rp2350` reports every check closed but state-slots
// (docs/HARDENING.md §9). The filesystem size is set in mpconfigboard.cmake.
#define MICROPY_HW_BOARD_NAME          "fieldseal-rp2350"
#define MICROPY_HW_MCU_NAME            "RP2350"

// D17/D19/D20: no USB device at all: no CDC REPL, no MSC, no 1200-baud touch (A1, A8, A10).
#define MICROPY_HW_ENABLE_USBDEV       (0)
#define MICROPY_HW_USB_CDC             (0)
#define MICROPY_HW_USB_MSC             (0)
#define MICROPY_HW_USB_CDC_1200BPS_TOUCH (0)
// D17: no UART REPL (port default is already 0; stated so a reviewer sees it).
#define MICROPY_HW_ENABLE_UART_REPL    (0)

// D17: no compiler (§2.2).
#define MICROPY_ENABLE_COMPILER        (0)

// A7: no native code. Do NOT define MICROPY_EMIT_THUMB / MICROPY_EMIT_INLINE_THUMB (or the
// RV32 variants): ports/rp2/mpconfigport.h:108-115 #defines them (1) without #ifndef and rp2
// builds with -Werror, so a board's (0) fails to compile. No native .mpy loading, and no
// compiler (above), so @micropython.native/viper/asm_thumb source never reaches the emitters.
#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)

// A9: no raw memory access.
#define MICROPY_PY_MACHINE_MEMX        (0)
#define MICROPY_PY_UCTYPES             (0)

// Guard state: A/B slots in a dedicated sector past the filesystem (external flash:
// a full snapshot can still roll it back, D13), monotonic counters in OTP (§2.8).
#define FIELDSEAL_STATE_FLASH_ADDR     (0x10ff0000)
#define FIELDSEAL_STATE_FLASH_SIZE     (0x10000)
#define FIELDSEAL_STATE_OTP            (1)
