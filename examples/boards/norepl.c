// fieldseal board templates (esp32, rp2): the REPL entry points for a firmware built with
// MICROPY_ENABLE_COMPILER (0).
//
// ports/esp32/main.c and ports/rp2/main.c call pyexec_raw_repl()/pyexec_friendly_repl()
// whenever the boot files return, but shared/runtime/pyexec.c defines them only when the
// compiler is built, so without these two functions such a firmware does not link. stm32
// needs neither: its main.c skips the REPL loop without the compiler. Selected in
// mpconfigboard.cmake: set(MICROPY_SOURCE_BOARD ${MICROPY_BOARD_DIR}/../norepl.c)
//
// There is no REPL to run: both return PYEXEC_FORCED_EXIT, on which main.c leaves its REPL
// loop and soft-resets, so the frozen _boot.py (the guard) runs again.

#include "py/mpconfig.h"
#include "shared/runtime/pyexec.h"

#if !MICROPY_ENABLE_COMPILER

int pyexec_raw_repl(void) {
    return PYEXEC_FORCED_EXIT;
}

int pyexec_friendly_repl(void) {
    return PYEXEC_FORCED_EXIT;
}

#endif
