#define MICROPY_HW_BOARD_NAME          "FS Pico meter"
// filesystem size: mpconfigboard.cmake (the rp2 linker takes it from there)

// everything that can be closed in a build is closed
#define MICROPY_HW_ENABLE_USBDEV       (0)
#define MICROPY_HW_ENABLE_UART_REPL    (0)
#define MICROPY_ENABLE_COMPILER        (0)
// no MICROPY_EMIT_THUMB/INLINE_THUMB (0): ports/rp2/mpconfigport.h:108-110 defines them
// (1) without #ifndef and rp2 builds with -Werror, so a (0) here fails to compile
#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)
#define MICROPY_PY_MACHINE_MEMX        (0)
#define MICROPY_PY_UCTYPES             (0)
#define FIELDSEAL_STATE_FLASH_ADDR     (0x10160000)
#define FIELDSEAL_STATE_FLASH_SIZE     (0x2000)
