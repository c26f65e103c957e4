#define MICROPY_HW_BOARD_NAME "samd"
