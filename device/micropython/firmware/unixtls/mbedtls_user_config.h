/* Adjusts the system's mbedTLS configuration (Debian's libmbedtls-dev) for the unix build
 * with TLS (firmware.UnixOptions.TLS), read at the end of mbedtls/config.h.
 *
 * Debian builds mbedTLS with MBEDTLS_DEBUG_C, and MicroPython's tls module, when it sees
 * that option, installs a debug callback at level 3 that prints every handshake to the
 * console, premaster and master secrets included. Undefined here, the module installs no
 * callback and the library prints nothing. Only options that change no structure the
 * shared library shares may go here: this one only hides functions. */
#undef MBEDTLS_DEBUG_C
