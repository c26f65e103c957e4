// Generic ESP32-S3 module as a vendor copies it (fieldseal audit fixture).
#ifndef MICROPY_HW_BOARD_NAME
#define MICROPY_HW_BOARD_NAME               "FS-S3-PLAIN"
#endif
#define MICROPY_HW_MCU_NAME                 "ESP32S3"

// external USB-UART on the dev kit
#define MICROPY_HW_ENABLE_UART_REPL         (1)

#define MICROPY_HW_I2C0_SCL                 (9)
#define MICROPY_HW_I2C0_SDA                 (8)
