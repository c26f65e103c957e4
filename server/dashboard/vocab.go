package dashboard

import "sort"

// Reason is one name of the vocabulary the server uses for rejections, state changes and
// alerts (logs, metrics, audit records, API answers, webhooks and this console all use the
// same names): what it means in one line and the THREAT_MODEL row it answers.
type Reason struct {
	Name    string
	Meaning string
	Threat  string // THREAT_MODEL row ("D12"), or "" for routine reasons
	Bad     bool   // evidence against the device (shown in red)
}

// Reasons is the vocabulary. server.TestReasonVocabulary checks that every name the
// server emits is here.
var Reasons = map[string]Reason{}

func init() {
	for _, r := range []Reason{
		// Rejections of a report (server/reasons.go).
		{"malformed", "the message is not a well-formed COSE_Mac0 report", "S8", true},
		{"oversize", "the message is larger than 16 KiB", "S8", true},
		{"unsupported", "an algorithm or header the server does not accept", "S8", true},
		{"unknown-device", "the key id names no provisioned device", "S3", true},
		{"bad-mac", "the report's MAC does not verify under the device's key: forged or corrupted", "S2", true},
		{"wrong-epoch", "the report is from an earlier provisioning of the device", "D13", true},
		{"replay", "the report counter is not above the last accepted one: an old report sent again", "S1", true},
		{"stale-nonce", "the report answers a nonce the server no longer accepts: held back and replayed", "S1", true},
		{"wrong-manifest", "the device runs a manifest that is not the one it must run", "S7", true},
		{"conflict", "another server replica moved the device first; the device resends", "", false},
		{"unavailable", "the server was shutting down or its storage failed; the device resends", "S9", false},
		// Evidence-log verification (fschain).
		{"gap", "an entry of the evidence log is missing", "D12", true},
		{"reorder", "evidence-log entries arrived out of order or twice", "D12", true},
		{"rollback", "the device claims fewer log entries than the server already verified: restored from a copy or cut", "D13", true},
		{"fork", "a resent log entry differs from the one already verified: history rewritten", "D13", true},
		{"forged-entry", "a log entry's tag does not verify: altered or inserted after it was written", "D11", true},
		{"head-mismatch", "the log does not end where the device claims", "D12", true},
		{"bad-seal", "the seal over the newest entries does not verify: the log's end was cut off or altered", "D12", true},
		{"bad-receipt", "a receipt is not the server's or not about this log (offline check)", "D13", true},
		// Why a device became tampered or suspect.
		{"check-fail", "the device's own file check found a sealed file changed, missing or added (logged, so a later restore does not hide it)", "D2", true},
		{"code-mismatch", "the report's measurement says the running code differs from the sealed manifest", "D1", true},
		{"cover-open", "the enclosure was opened outside a booked service window", "D8", true},
		{"magnet", "a magnet was held against the meter", "", true},
		{"refused", "the guard refused to load a file that is not as sealed", "D4", true},
		{"erased", "the erase policy deleted application files after tampering", "D16", true},
		{"overflow", "the log filled while offline; routine entries were counted, not kept", "D15", true},
		{"rollback-detected", "recovery found valid log records beyond the saved state, or an edited state: the state slots (or the whole flash) were copied back after tampering", "D22", true},
		{"log-corrupt", "the device found its evidence log unreadable and kept it aside: entries the server had not verified are lost", "D26", true},
		{"repeat", "more cover openings (or magnet events) than are logged one by one: counted, with the first and last time", "D24", true},
		{"boot-failed", "the guard could not finish booting and reset; the exception is in the entry (a fault, not evidence by itself)", "", false},
		{"bad-downlink", "the device rejected a downlink message that failed its MAC: someone forged server messages", "S5", true},
		{"evidence-lost", "the report's authenticated flags say the cover opened or a magnet was seen, but the log holds no such entry: the log or its state was put back", "D22", true},
		{"token-replay", "a service or clear token was used twice or was not issued for this device", "S6", true},
		{"clock", "the device's clock went backwards by more than an hour within one boot", "", true},
		{"silent", "the device missed several report intervals", "S4", true},
		{"catch-up-stalled", "the device sent parts of its backlog three times without reaching its claimed end", "D12", true},
		{"repeated-rejections", "three authenticated reports in a row were rejected", "S1", true},
		// Routine transitions.
		{"provision", "the device was provisioned", "", false},
		{"reprovision", "the device was provisioned again with new keys (next epoch)", "", false},
		{"first-report", "the first verified report arrived", "", false},
		{"clean-report", "a verified report without tamper evidence", "", false},
		{"returned-log-continuous", "back from silence; the log continues exactly from the verified anchor", "S4", false},
		{"service-token", "a service visit was booked; the cover may be opened in its window", "", false},
		{"service-end", "the technician closed the service window on the device", "", false},
		{"service-window-over", "the service window ended", "", false},
		{"visit-closed", "the service visit was closed with a new physical seal", "", false},
		{"inspected", "an operator inspected the device and cleared its tamper state", "D10", false},
		{"issued", "a service token was issued for a booked visit", "", false},
		{"closed", "a service visit was closed", "", false},
		{"partial-segment", "part of a backlog too large for one message was verified; the device sends the rest next", "", false},
		{"tamper-cleared", "an operator cleared the tamper state with a written reason (a clear token goes to the device)", "D10", false},
	} {
		Reasons[r.Name] = r
	}
}

func lookupReason(name string) Reason {
	if r, ok := Reasons[name]; ok {
		return r
	}
	return Reason{Name: name}
}

func (d *dash) threatURL(row string) string {
	switch {
	case row == "":
		return d.threats
	case row[0] == 'D':
		return d.threats + "#on-the-device"
	}
	return d.threats + "#on-the-wire-and-at-the-server"
}

// ReasonNames lists the vocabulary, sorted.
func ReasonNames() []string {
	var out []string
	for n := range Reasons {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
