// fieldseal qemu board (MPS2_AN385): a main() that boots like ports/stm32/main.c, and
// `hostblk.BlockDev`, a block device over a host file reached through ARM semihosting.
//
// Boot order, as on stm32 (ports/stm32/main.c, MicroPython 1.29): mount internal storage at
// /flash (format it when it holds no filesystem), make it the working directory and put
// /flash and /flash/lib on sys.path; run the frozen boot file with Ctrl-C disabled; then
// boot.py and main.py (frozen or on storage); then the REPL. The host files are named
// flash.img (internal storage) and, for the guard's adapter, sd.img, bkpsram.img and hw.img
// in qemu's working directory.

#include <string.h>

#include "py/runtime.h"
#include "py/gc.h"
#include "py/mperrno.h"
#include "py/stackctrl.h"
#include "extmod/vfs.h"
#include "extmod/vfs_lfs.h"
#include "shared/runtime/gchelper.h"
#include "shared/runtime/pyexec.h"

#define SYS_OPEN (0x01)
#define SYS_CLOSE (0x02)
#define SYS_WRITE (0x05)
#define SYS_READ (0x06)
#define SYS_SEEK (0x0A)
#define SYS_FLEN (0x0C)
#define SYS_TIME (0x11)
#define SYS_GET_CMDLINE (0x15)
#define MODE_RPLUSB (3) // "r+b": the host file must exist

static uint32_t semihost(uint32_t num, const void *arg) {
    register uint32_t r0 __asm__ ("r0") = num;
    register const void *r1 __asm__ ("r1") = arg;
    __asm__ __volatile__ ("bkpt 0xAB\n" : "+r" (r0) : "r" (r1) : "memory");
    return r0;
}

// The host's clock (seconds): file times on littlefs.
uint64_t mp_hal_time_ns(void) {
    return (uint64_t)semihost(SYS_TIME, NULL) * 1000000000ULL;
}

typedef struct {
    mp_obj_base_t base;
    int32_t handle;
    uint32_t block_size;
    uint32_t block_count;
} hostblk_obj_t;

static void hostblk_io(hostblk_obj_t *self, uint32_t block, uint32_t offset, uint8_t *buf, size_t len, bool write) {
    uint32_t pos = block * self->block_size + offset;
    if (pos + len > self->block_size * self->block_count) {
        mp_raise_OSError(MP_EINVAL);
    }
    uint32_t seek[2] = { (uint32_t)self->handle, pos };
    if (semihost(SYS_SEEK, seek) != 0) {
        mp_raise_OSError(MP_EIO);
    }
    uint32_t args[3] = { (uint32_t)self->handle, (uint32_t)buf, len };
    if (semihost(write ? SYS_WRITE : SYS_READ, args) != 0) { // bytes not transferred
        mp_raise_OSError(MP_EIO);
    }
}

// BlockDev(name, block_size=4096): the host file `name` (relative to qemu's working
// directory), its length a multiple of block_size.
static mp_obj_t hostblk_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 1, 2, false);
    size_t len;
    const char *name = mp_obj_str_get_data(args[0], &len);
    uint32_t open[3] = { (uint32_t)name, MODE_RPLUSB, len };
    int32_t h = (int32_t)semihost(SYS_OPEN, open);
    if (h < 0) {
        mp_raise_OSError(MP_ENOENT);
    }
    hostblk_obj_t *self = mp_obj_malloc(hostblk_obj_t, type);
    self->handle = h;
    self->block_size = n_args > 1 ? mp_obj_get_int(args[1]) : 4096;
    uint32_t flen[1] = { (uint32_t)h };
    self->block_count = semihost(SYS_FLEN, flen) / self->block_size;
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t hostblk_readblocks(size_t n_args, const mp_obj_t *args) {
    hostblk_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_WRITE);
    hostblk_io(self, mp_obj_get_int(args[1]), n_args > 3 ? mp_obj_get_int(args[3]) : 0, buf.buf, buf.len, false);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(hostblk_readblocks_obj, 3, 4, hostblk_readblocks);

static mp_obj_t hostblk_writeblocks(size_t n_args, const mp_obj_t *args) {
    hostblk_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_READ);
    hostblk_io(self, mp_obj_get_int(args[1]), n_args > 3 ? mp_obj_get_int(args[3]) : 0, buf.buf, buf.len, true);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(hostblk_writeblocks_obj, 3, 4, hostblk_writeblocks);

static mp_obj_t hostblk_ioctl(mp_obj_t self_in, mp_obj_t op_in, mp_obj_t arg_in) {
    hostblk_obj_t *self = MP_OBJ_TO_PTR(self_in);
    switch (mp_obj_get_int(op_in)) {
        case MP_BLOCKDEV_IOCTL_BLOCK_COUNT:
            return MP_OBJ_NEW_SMALL_INT(self->block_count);
        case MP_BLOCKDEV_IOCTL_BLOCK_SIZE:
            return MP_OBJ_NEW_SMALL_INT(self->block_size);
        default: // init, deinit, sync, erase: nothing to do on a host file
            return MP_OBJ_NEW_SMALL_INT(0);
    }
}
static MP_DEFINE_CONST_FUN_OBJ_3(hostblk_ioctl_obj, hostblk_ioctl);

static const mp_rom_map_elem_t hostblk_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&hostblk_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&hostblk_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&hostblk_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(hostblk_locals_dict, hostblk_locals_dict_table);

MP_DEFINE_CONST_OBJ_TYPE(
    hostblk_type,
    MP_QSTR_BlockDev,
    MP_TYPE_FLAG_NONE,
    make_new, hostblk_make_new,
    locals_dict, &hostblk_locals_dict
    );

static const mp_rom_map_elem_t hostblk_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_hostblk) },
    { MP_ROM_QSTR(MP_QSTR_BlockDev), MP_ROM_PTR(&hostblk_type) },
};
static MP_DEFINE_CONST_DICT(hostblk_module_globals, hostblk_module_globals_table);

const mp_obj_module_t hostblk_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&hostblk_module_globals,
};
MP_REGISTER_MODULE(MP_QSTR_hostblk, hostblk_module);

// Mount flash.img at /flash like stm32's init_flash_fs(): format when no filesystem is
// found, cwd /flash, sys.path gets /flash and /flash/lib after '' and .frozen.
static void mount_flash(void) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t name = mp_obj_new_str_from_cstr("flash.img");
        mp_obj_t bdev = hostblk_make_new(&hostblk_type, 1, 0, &name);
        mp_obj_t mount_point = mp_obj_new_str_from_cstr("/flash");
        if (mp_vfs_mount_and_chdir_protected(bdev, mount_point) != 0) {
            mp_printf(&mp_plat_print, "MPY: can't mount flash, formatting\n");
            mp_obj_t mkfs = mp_load_attr(MP_OBJ_FROM_PTR(&mp_type_vfs_lfs2), MP_QSTR_mkfs);
            mp_call_function_1(mkfs, bdev);
            mp_vfs_mount_and_chdir_protected(bdev, mount_point);
        }
        mp_obj_list_append(mp_sys_path, mount_point);
        mp_obj_list_append(mp_sys_path, mp_obj_new_str_from_cstr("/flash/lib"));
        nlr_pop();
    } else {
        mp_printf(&mp_plat_print, "MPY: no flash.img: ");
        mp_obj_print_exception(&mp_plat_print, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
}

// MICROPY_HEAP_SIZE is the largest heap; qemu's -append "heap=N" picks a smaller one at
// power-on, so one image serves every heap size a test needs.
static uint32_t board_heap[MICROPY_HEAP_SIZE / sizeof(uint32_t)];

static size_t heap_bytes(void) {
    // The command line is the kernel's path, then -append's text: room for a long path (a
    // buffer too small makes SYS_GET_CMDLINE fail, and the heap silently stays the largest).
    static char cmdline[512];
    uint32_t args[2] = { (uint32_t)cmdline, sizeof(cmdline) - 1 };
    if (semihost(SYS_GET_CMDLINE, args) != 0) {
        return MICROPY_HEAP_SIZE;
    }
    cmdline[sizeof(cmdline) - 1] = 0;
    const char *p = strstr(cmdline, "heap=");
    if (p == NULL) {
        return MICROPY_HEAP_SIZE;
    }
    size_t n = 0;
    for (p += 5; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');
    }
    return n >= 8192 && n <= MICROPY_HEAP_SIZE ? (n & ~(size_t)7) : MICROPY_HEAP_SIZE;
}

int main(int argc, char **argv) {
    mp_cstack_init_with_sp_here(MICROPY_STACK_SIZE);
    size_t heap = heap_bytes();
    gc_init(board_heap, (char *)board_heap + heap);
    for (;;) {
        mp_init();
        mount_flash();
        #if defined(MICROPY_BOARD_FROZEN_BOOT_FILE)
        pyexec_frozen_module(MICROPY_BOARD_FROZEN_BOOT_FILE, false);
        #endif
        if (pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL) {
            pyexec_file_if_exists("boot.py");
            pyexec_file_if_exists("main.py");
        }
        #if MICROPY_ENABLE_COMPILER
        // Without the compiler there is no REPL to fall into (as ports/stm32/main.c): a
        // soft reset follows boot.py/main.py.
        for (;;) {
            if (pyexec_mode_kind == PYEXEC_MODE_RAW_REPL) {
                if (pyexec_raw_repl() != 0) {
                    break;
                }
            } else {
                if (pyexec_friendly_repl() != 0) {
                    break;
                }
            }
        }
        #endif
        mp_printf(&mp_plat_print, "MPY: soft reboot\n");
        gc_sweep_all();
        mp_deinit();
    }
}
