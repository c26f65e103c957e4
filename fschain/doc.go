// Package fschain implements FS-chain v1, fieldseal's forward-secure evidence log
// (docs/PROTOCOL.md, "Evidence log (FS-chain v1)"): the device-side Writer with its
// crash-safe storage layout, the server-side incremental Verify, anchor receipts and the
// offline check of an exported log.
//
// A thief who extracts everything stored on a device at time t can neither change,
// reorder, insert, delete nor cut off any entry written before t without Verify naming
// the failure (gap, reorder, rollback, fork, forged-entry, head-mismatch, bad-seal) and the
// sequence number where it happened. Only SHA-256 and HMAC-SHA-256 are used, so the
// MicroPython guard implements the same construction; testdata/vectors/fschain holds the
// vectors both implementations must pass.
//
// It imports nothing of fieldseal's but wire.
package fschain

//go:generate go run ./internal/vectorgen -root ..
