// fieldseal hardened board template: STM32F4 meter whose radio is a LoRaWAN modem on a
// UART (LPWAN profile, docs/PROTOCOL.md). Every setting of the stm32 template (no USB, no
// REPL, no compiler, the guard as the frozen boot file…: docs/HARDENING.md), plus the
// modem's UART. `fieldseal audit examples/boards/stm32-lorawan` reports the same as for
// the stm32 template.
#include "../stm32/mpconfigboard.h"

#undef MICROPY_HW_BOARD_NAME
#define MICROPY_HW_BOARD_NAME       "fieldseal-stm32-lorawan"

// The modem (RAKwireless RUI3 AT commands, e.g. a RAK3172) on UART 2: pyboard X3 = PA2
// (TX to the modem's RX), X4 = PA3. An application UART, not a REPL: MICROPY_HW_UART_REPL
// stays undefined (D17, A1). fsboot.py opens it at 115200 baud, RUI3's default.
#define MICROPY_HW_UART2_TX         (pin_A2)
#define MICROPY_HW_UART2_RX         (pin_A3)
