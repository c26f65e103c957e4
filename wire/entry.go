package wire

// Entry is one record of the FS-chain evidence log on the wire: [n, t, type, payload, tag].
// Payload is the deterministic CBOR of the type's payload map (H(payload) enters the chain).
type Entry struct {
	_       struct{} `cbor:",toarray"`
	N       uint64   // sequence number, from 1
	T       uint64   // device time, unix seconds, untrusted
	Type    uint16
	Payload []byte // 0..MaxPayload bytes
	Tag     []byte // 16 bytes
}

// MaxPayload is the largest entry payload fschain.md allows.
const MaxPayload = 1024

// Segment carries the device's unacknowledged log entries and its claimed head and seal:
// [first, entries, n, h_n, seal_n]. With no new entries, first = n+1 and Entries is empty.
type Segment struct {
	_       struct{} `cbor:",toarray"`
	First   uint64
	Entries []Entry
	N       uint64
	Head    []byte // h_n, 32 bytes
	Seal    []byte // seal_n, 32 bytes
}

// Entry types (fschain.md, "Entry types").
const (
	EntryBoot           uint16 = 1
	EntryCheckOK        uint16 = 2
	EntryCheckFail      uint16 = 3
	EntryCoverOpen      uint16 = 4
	EntryCoverClose     uint16 = 5
	EntryMagnet         uint16 = 6
	EntryRefused        uint16 = 7
	EntryErased         uint16 = 8
	EntryServiceBegin   uint16 = 9
	EntryServiceEnd     uint16 = 10
	EntryTamperCleared  uint16 = 11
	EntryManifestUpdate uint16 = 12
	EntryRegister       uint16 = 13
	EntryOverflow       uint16 = 14
	EntryRecovered      uint16 = 15
	EntryBadDownlink    uint16 = 16
	// EntryRollbackDetected: recovery found entries beyond the state slot that a power cut
	// cannot leave (a copied-back or edited slot), or device state whose tag fails (D22, D26).
	EntryRollbackDetected uint16 = 17
	// EntryLogCorrupt: committed entries are missing or altered in storage; the device gave
	// them up to keep reporting (D26).
	EntryLogCorrupt  uint16 = 18
	EntryApplication uint16 = 0x8000 // and above: application-defined
)

var entryNames = map[uint16]string{
	EntryBoot: "boot", EntryCheckOK: "check-ok", EntryCheckFail: "check-fail", EntryCoverOpen: "cover-open",
	EntryCoverClose: "cover-close", EntryMagnet: "magnet", EntryRefused: "refused", EntryErased: "erased",
	EntryServiceBegin: "service-begin", EntryServiceEnd: "service-end", EntryTamperCleared: "tamper-cleared",
	EntryManifestUpdate: "manifest-update", EntryRegister: "register", EntryOverflow: "overflow",
	EntryRecovered: "recovered", EntryBadDownlink: "bad-downlink",
	EntryRollbackDetected: "rollback-detected", EntryLogCorrupt: "log-corrupt",
}

// EntryName is the stable name of an entry type ("application" for ≥ 0x8000, "unknown" otherwise).
func EntryName(t uint16) string {
	if n, ok := entryNames[t]; ok {
		return n
	}
	if t >= EntryApplication {
		return "application"
	}
	return "unknown"
}

// IsTamper reports whether an entry type is tamper-class: never dropped on overflow and
// always surfaced to the owner. Application types are treated as routine.
func IsTamper(t uint16) bool {
	if t == EntryRepeat {
		return true
	}
	switch t {
	case EntryCheckFail, EntryCoverOpen, EntryMagnet, EntryRefused, EntryErased, EntryOverflow, EntryBadDownlink,
		EntryRollbackDetected, EntryLogCorrupt:
		return true
	}
	return false
}

// EntryBootFailed: the guard's boot raised an exception; the device logged it (payload
// {1: exception type, 2: message}) and reset. Routine: a fault, not evidence by itself.
const EntryBootFailed uint16 = 19

// EntryRepeat: tamper entries of one kind beyond the first few between two reports,
// counted instead of logged one by one (D24): payload RepeatPayload. Tamper-class.
const EntryRepeat uint16 = 20

func init() {
	entryNames[EntryBootFailed] = "boot-failed"
	entryNames[EntryRepeat] = "repeat"
}
