// Package vocabulary holds no code: its test guards the rule that the protocol's
// vocabulary is written once. Entry payloads, topics, the device's MQTT password, media
// types, error names and unverified manifest parsing belong to wire; entry heads to
// fschain; atomic file replacement to internal/atomicfile. The test reads every non-test
// Go file of the module and fails where another package spells one of them out again,
// the way Tessera guards its layout strings.
package vocabulary
