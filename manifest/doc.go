// Package manifest seals an application: Build compiles its .py files with mpy-cross,
// checks every .mpy header (version, architecture, no native code unless allowed), hashes
// every file, code and data alike, and writes the vendor-signed manifest (wire.Manifest)
// and the same manifest as a Python module to freeze into the firmware. VerifyTree checks
// a tree against a manifest the way the guard and the agent do: modified, missing, extra,
// unreadable.
package manifest
