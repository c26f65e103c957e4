// fieldseal hardened board template: STM32F4 (pyboard-class), MicroPython 1.29.
//
// Merge these settings into your board's mpconfigboard.h (clocks, pins, LEDs and
// flash layout stay yours). `fieldseal audit examples/boards/stm32` reports every
// check closed but mem-access and state-slots (see below); docs/HARDENING.md explains
// each line (reference items A1–A14).

#define MICROPY_HW_BOARD_NAME       "fieldseal-stm32"
#define MICROPY_HW_MCU_NAME         "STM32F405RG"

#define MICROPY_HW_HAS_FLASH        (1)
#define MICROPY_HW_ENABLE_RTC       (1)  // RTC tamper inputs + BKPSRAM (reference §2.7)

// D17/D19: no USB at all: no VCP REPL, no MSC, no DTR/1200-baud paths (A1, A10).
#define MICROPY_HW_ENABLE_USB       (0)
// D17: no UART REPL — MICROPY_HW_UART_REPL is deliberately not defined (A1).

// D17: no compiler: no REPL can run source; boot code and app are frozen .mpy (§2.2).
#define MICROPY_ENABLE_COMPILER     (0)
// A frozen manifest makes py/mkrules.mk add -DMICROPY_MODULE_FROZEN_STR (frozen *source*
// modules, compiled at import): with the compiler off that loader does not link
// (mp_lexer_new_from_str_len, mp_parse_compile_execute). Frozen .mpy need no compiler.
#undef MICROPY_MODULE_FROZEN_STR
#define MICROPY_MODULE_FROZEN_STR   (0)

// D18: no USR-button safe boot / factory reset (A3), no SD boot (A4).
#define MICROPY_HW_HAS_SWITCH       (0)
#define MICROPY_HW_ENABLE_SDCARD    (1)  // the app may mount it itself, read-only
#define MICROPY_HW_SDCARD_MOUNT_AT_BOOT (0)

// A7: no native code, neither emitted nor loaded from .mpy.
#define MICROPY_EMIT_THUMB          (0)
#define MICROPY_EMIT_INLINE_THUMB   (0)
#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)

// A9: fewer primitives for whoever reaches Python. machine.mem8/16/32 stay: the stm
// module the guard's adapter uses (stm.mem32, RTC backup registers) is built on them, and
// MICROPY_PY_MACHINE_MEMX (0) does not link with it. The audit's mem-access check stays
// open for that reason; with no REPL and no compiler, no Python reaches them.
#define MICROPY_PY_UCTYPES          (0)

// D18: the guard is the frozen boot file: runs before boot.py, even in safe mode,
// with Ctrl-C disabled (A2, ports/stm32/main.c:671-674).
#define MICROPY_BOARD_FROZEN_BOOT_FILE "fsboot.py"

// Where the state slots should live: battery-backed SRAM, erased by an RTC tamper event
// (reference §2.7, §2.8). A declaration only: the guard does not read it, and the audit
// does not count it. The slots leave /flash only when fsboot.py passes a block device over
// that memory to the adapter (Port(slots=…), docs/HARDENING.md §9); this template does not.
#define FIELDSEAL_STATE_BKPSRAM     (1)

// D20: production sets RDP level 2 (option bytes, STM32CubeProgrammer); the guard can
// compare this with the option bytes at boot (reference §2.3).
#define FIELDSEAL_STM32_RDP_LEVEL   (2)
