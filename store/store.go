// Package store is the fleet server's storage: devices with their verification anchors,
// manifests, verified log entries, audit records, alerts, command tokens, service visits
// and API tokens. Store is an interface; store/sqlite is the embedded default and every
// backend must pass the conformance suite in store/storetest.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors every backend returns (wrapped or not) so callers can use errors.Is.
var (
	ErrNotFound = errors.New("not-found")
	ErrConflict = errors.New("conflict") // compare-and-set lost or duplicate key
)

// Device states (the server's state machine).
const (
	StateProvisioned = "provisioned"
	StateTrusted     = "trusted"
	StateSuspect     = "suspect"
	StateTampered    = "tampered"
	StateSilent      = "silent"
	StateService     = "service"
)

// States lists every device state, for metrics and validation.
var States = []string{StateProvisioned, StateTrusted, StateSuspect, StateTampered, StateSilent, StateService}

// Device is one device's identity, secrets and verification state. Version is bumped by
// every successful Commit and is the compare-and-set guard: two replicas (or a stale cache)
// can never both advance the same anchor.
type Device struct {
	ID      string
	Product string
	Epoch   uint32
	Version uint64

	UplinkKey   []byte // R
	DownlinkKey []byte // T

	State       string
	StateSince  time.Time
	StateReason string

	PinnedVersion  uint64 // 0: follow the product's current manifest
	RunningVersion uint64

	AnchorN    uint64
	AnchorHead []byte
	AnchorKey  []byte // chain key K_{n+1}
	Receipt    []byte // latest signed receipt for the anchor

	LastRSeq       uint64
	LastReportHash []byte // SHA-256 of the last accepted report: exact retransmission
	LastAck        []byte // its ack, answered again to a retransmission
	Nonce          []byte // the nonce the last ack carried
	PrevNonce      []byte // the one before: the device may not have seen the newest ack
	LastSeen       time.Time
	LastDeviceTime uint64
	LastBoot       uint32
	ReportInterval uint32 // seconds
	Rejections     uint32 // consecutive authenticated rejections
	WindowUntil    uint64 // server time (unix s) a service window is open until
	Created        time.Time
	// DevEUI is the device's LoRaWAN DevEUI, set at provisioning: 16 lowercase hex digits
	// (server.ParseDevEUI), unique across devices; "" when the device has none.
	DevEUI string
}

// Clone returns a deep enough copy to mutate.
func (d *Device) Clone() *Device {
	c := *d
	return &c
}

// DeviceFields is a set of a Device's stored fields: bit i-1 stands for the struct's i-th
// field in declaration order, which is also the order of the backends' device columns
// (FieldProduct is bit 0, FieldDevEUI bit 26). ID, field 0, is the row's key and is in
// no set.
type DeviceFields uint32

// The fields of a Device, as DeviceFields bits.
const (
	FieldProduct DeviceFields = 1 << iota
	FieldEpoch
	FieldVersion
	FieldUplinkKey
	FieldDownlinkKey
	FieldState
	FieldStateSince
	FieldStateReason
	FieldPinnedVersion
	FieldRunningVersion
	FieldAnchorN
	FieldAnchorHead
	FieldAnchorKey
	FieldReceipt
	FieldLastRSeq
	FieldLastReportHash
	FieldLastAck
	FieldNonce
	FieldPrevNonce
	FieldLastSeen
	FieldLastDeviceTime
	FieldLastBoot
	FieldReportInterval
	FieldRejections
	FieldWindowUntil
	FieldCreated
	FieldDevEUI

	// NumDeviceFields is the number of fields in a DeviceFields set (all but ID).
	NumDeviceFields = 27
	// AllDeviceFields is every field but ID.
	AllDeviceFields DeviceFields = 1<<NumDeviceFields - 1
)

// Diff returns the fields in which d differs from was as a backend stores them: byte
// slices by content and by nil-ness (nil and empty may be stored differently), times
// with Equal (backends keep the instant, not the location or monotonic reading).
func (d *Device) Diff(was *Device) DeviceFields {
	var f DeviceFields
	if d.Product != was.Product {
		f |= FieldProduct
	}
	if d.Epoch != was.Epoch {
		f |= FieldEpoch
	}
	if d.Version != was.Version {
		f |= FieldVersion
	}
	if bytesDiffer(d.UplinkKey, was.UplinkKey) {
		f |= FieldUplinkKey
	}
	if bytesDiffer(d.DownlinkKey, was.DownlinkKey) {
		f |= FieldDownlinkKey
	}
	if d.State != was.State {
		f |= FieldState
	}
	if !d.StateSince.Equal(was.StateSince) {
		f |= FieldStateSince
	}
	if d.StateReason != was.StateReason {
		f |= FieldStateReason
	}
	if d.PinnedVersion != was.PinnedVersion {
		f |= FieldPinnedVersion
	}
	if d.RunningVersion != was.RunningVersion {
		f |= FieldRunningVersion
	}
	if d.AnchorN != was.AnchorN {
		f |= FieldAnchorN
	}
	if bytesDiffer(d.AnchorHead, was.AnchorHead) {
		f |= FieldAnchorHead
	}
	if bytesDiffer(d.AnchorKey, was.AnchorKey) {
		f |= FieldAnchorKey
	}
	if bytesDiffer(d.Receipt, was.Receipt) {
		f |= FieldReceipt
	}
	if d.LastRSeq != was.LastRSeq {
		f |= FieldLastRSeq
	}
	if bytesDiffer(d.LastReportHash, was.LastReportHash) {
		f |= FieldLastReportHash
	}
	if bytesDiffer(d.LastAck, was.LastAck) {
		f |= FieldLastAck
	}
	if bytesDiffer(d.Nonce, was.Nonce) {
		f |= FieldNonce
	}
	if bytesDiffer(d.PrevNonce, was.PrevNonce) {
		f |= FieldPrevNonce
	}
	if !d.LastSeen.Equal(was.LastSeen) {
		f |= FieldLastSeen
	}
	if d.LastDeviceTime != was.LastDeviceTime {
		f |= FieldLastDeviceTime
	}
	if d.LastBoot != was.LastBoot {
		f |= FieldLastBoot
	}
	if d.ReportInterval != was.ReportInterval {
		f |= FieldReportInterval
	}
	if d.Rejections != was.Rejections {
		f |= FieldRejections
	}
	if d.WindowUntil != was.WindowUntil {
		f |= FieldWindowUntil
	}
	if !d.Created.Equal(was.Created) {
		f |= FieldCreated
	}
	if d.DevEUI != was.DevEUI {
		f |= FieldDevEUI
	}
	return f
}

func bytesDiffer(a, b []byte) bool {
	return (a == nil) != (b == nil) || !bytes.Equal(a, b)
}

// Manifest is a registered, vendor-signed manifest.
type Manifest struct {
	Product string
	Version uint64
	Root    []byte
	Signed  []byte // the COSE_Sign1 as registered
	Created time.Time
	// ReportInterval is the policy's report interval in seconds, for silence detection.
	ReportInterval uint32
}

// Event is one verified log entry.
type Event struct {
	Dev      string
	Epoch    uint32
	N        uint64
	T        uint64
	Type     uint16
	TypeName string
	Tamper   bool
	Payload  []byte
	Decoded  string // JSON of the decoded payload, for tamper-class entries
	Tag      []byte
	Head     []byte
	Received time.Time
}

// Audit is a record of something that happened: a rejection, a state transition with its
// evidence, an admin action.
type Audit struct {
	ID     int64
	At     time.Time
	Actor  string // "pipeline", "timer" or an API token's name
	Kind   string // "rejection", "transition", "provision", "manifest", ...
	Dev    string
	Reason string
	Detail string // JSON evidence
}

// Alert is raised on a transition into tampered, suspect or silent (and on replays).
type Alert struct {
	ID      int64
	At      time.Time
	Dev     string
	Kind    string // the state entered, or the rejection name
	Reason  string
	Detail  string
	AckedAt time.Time
	AckedBy string
}

// Token is a command token issued to a device.
type Token struct {
	ID      []byte
	Dev     string
	Epoch   uint32
	Action  string
	Sealed  []byte // COSE_Mac0 under T, delivered in acks until used or expired
	Issued  time.Time
	Expires time.Time
	Window  uint32
	Used    bool
	UsedAt  time.Time
}

// Visit is a service visit: a work order with the token that authorises it.
type Visit struct {
	ID         string // chosen by the caller (random), so a Change can create it
	Dev        string
	WorkOrder  string
	Technician string
	TokenID    []byte
	Opened     time.Time
	Closed     time.Time
	SealNumber string
	Result     string
}

// APIToken is a bearer token of the API. Only its SHA-256 is stored.
type APIToken struct {
	Hash    []byte
	Name    string
	Role    string
	Created time.Time
}

// Change is one atomic unit of work: a device update guarded by compare-and-set on the
// device's Version (the version the caller read), plus the records that go with it.
// A nil Device records only the rest (rejections of unknown devices).
type Change struct {
	Device *Device // new row; Device.Version must be the version read
	Create bool    // insert (or replace on re-provisioning, which must raise Epoch)
	// Was, optional, is the row this change was computed from: the device exactly as the
	// writer last read or committed it, at version Device.Version and epoch Device.Epoch.
	// When set, backends may write only the fields that differ (WriteFields), which saves
	// most of an update's cost. The compare-and-set is unchanged and is what makes the
	// hint safe: the update applies only if the stored row is still at that version and
	// epoch, that is, is the row Was describes. So Was must be an unmodified copy of that
	// row; if it disagrees with the stored row in a field Device does not change, the
	// stored value stays, and that is the caller's bug (memstore reports it, the durable
	// backends cannot see it). Ignored with Create; nil writes every field.
	Was         *Device
	Events      []Event
	Audits      []Audit
	Alerts      []Alert
	Tokens      []Token  // inserted
	UsedTokens  [][]byte // marked used
	Visits      []Visit  // inserted
	CloseVisits []Visit  // closed: Closed, SealNumber, Result by ID
}

// WriteFields returns the device fields an update (not Create) must write: those in which
// Device differs from Was, plus Version, which every commit bumps; every field when Was
// is nil or is not a row of the same device, version and epoch.
func (c *Change) WriteFields() DeviceFields {
	d, w := c.Device, c.Was
	if w == nil || w.ID != d.ID || w.Version != d.Version || w.Epoch != d.Epoch {
		return AllDeviceFields
	}
	return d.Diff(w) | FieldVersion
}

// DeviceFilter selects devices.
type DeviceFilter struct {
	State   string
	Product string
	Limit   int
	// OverdueAt, when set, asks for devices seen at least once whose last report is older
	// than Missed × their report interval (default interval DefaultInterval) at that time,
	// so the silence check need not load the fleet. It is a hint: a backend may return a
	// superset, and callers re-check each device with DeviceFilter.Overdue.
	OverdueAt       time.Time
	Missed          int
	DefaultInterval time.Duration
}

// Overdue reports whether d matches the OverdueAt part of f (for backends filtering in Go).
func (f DeviceFilter) Overdue(d *Device) bool {
	if f.OverdueAt.IsZero() {
		return true
	}
	if d.LastSeen.IsZero() {
		return false
	}
	iv := time.Duration(d.ReportInterval) * time.Second
	if iv <= 0 {
		iv = f.DefaultInterval
	}
	return f.OverdueAt.Sub(d.LastSeen) > time.Duration(f.Missed)*iv
}

// Page bounds a listing, at most Limit entries of device Dev ("" for all, where allowed).
// Each listing has its own cursor, named for what it means: events go oldest first,
// from AfterN; audit records and alerts go newest first, from BeforeID.
type Page struct {
	Dev      string
	AfterN   uint64 // ListEvents: only entries with a sequence number above AfterN
	BeforeID int64  // ListAudit, ListAlerts: only ids below BeforeID (0: from the newest)
	Limit    int
}

// Store is the server's storage. Implementations are safe for concurrent use.
type Store interface {
	// Commit applies changes, each atomically and all of them durably (one transaction
	// where the backend allows: group commit). The i-th error is ErrConflict when change i
	// lost its compare-and-set; the others are still applied.
	Commit(ctx context.Context, changes []*Change) []error

	GetDevice(ctx context.Context, id string) (*Device, error)
	// DeviceByEUI returns the device with LoRaWAN DevEUI eui (as stored: lowercase), or
	// ErrNotFound.
	DeviceByEUI(ctx context.Context, eui string) (*Device, error)
	ListDevices(ctx context.Context, f DeviceFilter) ([]*Device, error)
	CountDevices(ctx context.Context) (map[string]int, error)
	// QueryDevices returns one page of the fleet list (devicequery.go).
	QueryDevices(ctx context.Context, q DeviceQuery) ([]*Device, error)

	PutManifest(ctx context.Context, m *Manifest) error // ErrConflict if product/version exists
	GetManifest(ctx context.Context, product string, version uint64) (*Manifest, error)
	CurrentManifest(ctx context.Context, product string) (*Manifest, error) // highest version
	ListManifests(ctx context.Context) ([]*Manifest, error)

	ListEvents(ctx context.Context, p Page) ([]Event, error) // oldest first, n above p.AfterN
	EventHead(ctx context.Context, dev string, epoch uint32, n uint64) ([]byte, error)

	AddAudit(ctx context.Context, a Audit) error
	ListAudit(ctx context.Context, p Page) ([]Audit, error) // newest first, ids below p.BeforeID (when > 0)

	ListAlerts(ctx context.Context, p Page, unackedOnly bool) ([]Alert, error) // newest first, ids below p.BeforeID (when > 0)
	AckAlert(ctx context.Context, id int64, by string, at time.Time) error

	GetToken(ctx context.Context, id []byte) (*Token, error)
	PendingTokens(ctx context.Context, dev string, epoch uint32, now time.Time) ([]Token, error)

	GetVisit(ctx context.Context, id string) (*Visit, error)
	ListVisits(ctx context.Context, dev string) ([]Visit, error)

	PutAPIToken(ctx context.Context, t APIToken) error
	GetAPIToken(ctx context.Context, hash []byte) (*APIToken, error)
	ListAPITokens(ctx context.Context) ([]APIToken, error)
	DeleteAPIToken(ctx context.Context, name string) error

	Districts // district.go

	Close() error
}

// Field is the value of column i (field bit i: FieldProduct is 0, …) of d's row, with
// version for the version column and times as t makes them (each backend stores them its
// own way), for backends that write rows column by column.
func (d *Device) Field(i int, version uint64, t func(time.Time) any) any {
	switch DeviceFields(1) << i {
	case FieldProduct:
		return d.Product
	case FieldEpoch:
		return int64(d.Epoch)
	case FieldVersion:
		return int64(version)
	case FieldUplinkKey:
		return d.UplinkKey
	case FieldDownlinkKey:
		return d.DownlinkKey
	case FieldState:
		return d.State
	case FieldStateSince:
		return t(d.StateSince)
	case FieldStateReason:
		return d.StateReason
	case FieldPinnedVersion:
		return int64(d.PinnedVersion)
	case FieldRunningVersion:
		return int64(d.RunningVersion)
	case FieldAnchorN:
		return int64(d.AnchorN)
	case FieldAnchorHead:
		return d.AnchorHead
	case FieldAnchorKey:
		return d.AnchorKey
	case FieldReceipt:
		return d.Receipt
	case FieldLastRSeq:
		return int64(d.LastRSeq)
	case FieldLastReportHash:
		return d.LastReportHash
	case FieldLastAck:
		return d.LastAck
	case FieldNonce:
		return d.Nonce
	case FieldPrevNonce:
		return d.PrevNonce
	case FieldLastSeen:
		return t(d.LastSeen)
	case FieldLastDeviceTime:
		return int64(d.LastDeviceTime)
	case FieldLastBoot:
		return int64(d.LastBoot)
	case FieldReportInterval:
		return int64(d.ReportInterval)
	case FieldRejections:
		return int64(d.Rejections)
	case FieldWindowUntil:
		return int64(d.WindowUntil)
	case FieldCreated:
		return t(d.Created)
	case FieldDevEUI:
		if d.DevEUI == "" {
			return nil // NULL: the unique index allows any number of devices without one
		}
		return d.DevEUI
	}
	panic(fmt.Sprintf("store: no device field %d", i))
}
