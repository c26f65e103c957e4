// Package wire holds every message fieldseal devices, agents and servers exchange —
// manifests, reports, log entries, acks, tokens and anchor receipts — with their
// deterministic CBOR and COSE encodings.
//
// It is the contract between the Go code and the MicroPython guard: change a byte here
// and docs/PROTOCOL.md, testdata/vectors/ and ProtocolVersion change with it.
// It imports nothing else of fieldseal's.
package wire
