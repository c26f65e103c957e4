/* Hardened STM32F4 board for fieldseal's audit tests: no USB, no UART REPL,
 * no compiler, no button modes, no SD boot, guard as the frozen boot file. */
#define MICROPY_HW_BOARD_NAME       "FS-HARDENED-F4"
#define MICROPY_HW_MCU_NAME         "STM32F405RG"

#define MICROPY_HW_HAS_FLASH        (1)
#define MICROPY_HW_ENABLE_RTC       (1)
#define MICROPY_HW_ENABLE_USB       (0)
#define MICROPY_HW_HAS_SWITCH       (0)
#define MICROPY_HW_ENABLE_SDCARD    (1)
#define MICROPY_HW_SDCARD_MOUNT_AT_BOOT (0)

#define MICROPY_ENABLE_COMPILER     (0)
#define MICROPY_EMIT_THUMB          (0)
#define MICROPY_EMIT_INLINE_THUMB   (0)
#define MICROPY_PERSISTENT_CODE_LOAD_NATIVE (0)
#define MICROPY_PY_MACHINE_MEMX     (0)
#define MICROPY_PY_UCTYPES          (0)
#define MICROPY_PY_STM              (0)  // stm.mem32 is raw memory access too

#ifndef FIELDSEAL_STATE_BKPSRAM
#define FIELDSEAL_STATE_BKPSRAM     (1)
#endif

// production sets RDP level 2 with STM32CubeProgrammer
#define FIELDSEAL_STM32_RDP_LEVEL   (2)

#define MICROPY_BOARD_FROZEN_BOOT_FILE "fsboot.py"

// a frozen manifest adds -DMICROPY_MODULE_FROZEN_STR (py/mkrules.mk), whose loader needs the compiler
#undef MICROPY_MODULE_FROZEN_STR
#define MICROPY_MODULE_FROZEN_STR   (0)
