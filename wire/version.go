package wire

// ProtocolVersion is bumped on every change to an encoding in this package.
// One dated line per change, newest last:
//
//	1  2026-11-25  first version: manifest (COSE_Sign1/EdDSA), report and ack (COSE_Mac0/HMAC 256/256),
//	               tokens, anchor receipts, log entries and segments, device bundle (JSON).
//	2  2026-12-06  entry types 17 rollback-detected and 18 log-corrupt (tamper class); DeviceState,
//	               the device state both implementations keep in the state slots (fsx2, tagged).
//	3  2026-12-06  LPWAN profile (lpwan.go): status, entry-fragment, ack and token frames of at most
//	               51 bytes with 8-byte truncated HMACs; the COSE messages are unchanged.
//	4  2026-12-06  device bundle: topic_root, the server's MQTT topic root when it is not
//	               fieldseal/v1 (absent: fieldseal/v1, so earlier bundles keep their meaning).
const ProtocolVersion = 4
