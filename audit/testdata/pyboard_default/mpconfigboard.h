// A pyboard-like board as it ships: USR switch, SD card slot, USB VCP+MSC.
// Written for fieldseal's audit tests.
#define MICROPY_HW_BOARD_NAME       "FS-PYB-like"
#define MICROPY_HW_MCU_NAME         "STM32F405RG"

#define MICROPY_HW_HAS_SWITCH       (1)
#define MICROPY_HW_HAS_FLASH        (1)
#define MICROPY_HW_ENABLE_RNG       (1)
#define MICROPY_HW_ENABLE_RTC       (1)
#define MICROPY_HW_ENABLE_USB       (1)
#define MICROPY_HW_ENABLE_SDCARD    (1)

// UART 4 also carries the REPL
#define MICROPY_HW_UART_REPL        PYB_UART_4
#define MICROPY_HW_UART_REPL_BAUD   115200

#define MICROPY_HW_USRSW_PIN        (pin_B3)
#define MICROPY_HW_USRSW_PRESSED    (0)
