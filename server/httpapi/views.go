package httpapi

import (
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// API view types: what the HTTP API answers (and, server.AlertView, the alert webhooks),
// kept apart from the store's rows so that a storage change cannot change the API by
// accident (and secrets in a row cannot leak into an answer). One naming scheme: snake_case
// JSON; evidence and decoded payloads are JSON objects, never JSON text inside a string.
// openapi.json describes each, and server/openapi_schema_test.go checks real answers
// against it.

// DeviceView is a device as the API shows it.
type DeviceView struct {
	ID             string      `json:"id"`
	Product        string      `json:"product"`
	Epoch          uint32      `json:"epoch"`
	State          string      `json:"state"`
	StateSince     time.Time   `json:"state_since"`
	StateReason    string      `json:"state_reason,omitempty"`
	PinnedVersion  uint64      `json:"pinned_version,omitempty"` // 0: follows the product's current manifest
	RunningVersion uint64      `json:"running_version,omitempty"`
	AnchorN        uint64      `json:"anchor_n"`
	AnchorHead     []byte      `json:"anchor_head"`
	LastRSeq       uint64      `json:"last_rseq"`
	LastSeen       time.Time   `json:"last_seen"`
	LastDeviceTime uint64      `json:"last_device_time,omitempty"`
	LastBoot       uint32      `json:"last_boot,omitempty"`
	ReportInterval uint32      `json:"report_interval"`
	Rejections     uint32      `json:"rejections"`
	WindowUntil    uint64      `json:"window_until,omitempty"` // server time (unix s) a service window is open until
	Created        time.Time   `json:"created"`
	DevEUI         string      `json:"dev_eui,omitempty"` // LoRaWAN DevEUI set at provisioning, 16 lowercase hex digits
	PendingTokens  []TokenView `json:"pending_tokens,omitempty"`
}

// TokenView is a pending command token: never its sealed bytes.
type TokenView struct {
	ID      string    `json:"id"`
	Action  string    `json:"action"`
	Expires time.Time `json:"expires"`
}

func deviceView(d *store.Device, pending []store.Token) DeviceView {
	v := DeviceView{ID: d.ID, Product: d.Product, Epoch: d.Epoch, State: d.State, StateSince: d.StateSince, StateReason: d.StateReason,
		PinnedVersion: d.PinnedVersion, RunningVersion: d.RunningVersion, AnchorN: d.AnchorN, AnchorHead: d.AnchorHead,
		LastRSeq: d.LastRSeq, LastSeen: d.LastSeen, LastDeviceTime: d.LastDeviceTime, LastBoot: d.LastBoot,
		ReportInterval: d.ReportInterval, Rejections: d.Rejections, WindowUntil: d.WindowUntil, Created: d.Created, DevEUI: d.DevEUI}
	for _, t := range pending {
		v.PendingTokens = append(v.PendingTokens, TokenView{ID: hex.EncodeToString(t.ID), Action: t.Action, Expires: t.Expires})
	}
	return v
}

// EventView is a verified log entry.
type EventView struct {
	Dev      string          `json:"dev"`
	Epoch    uint32          `json:"epoch"`
	N        uint64          `json:"n"`
	T        uint64          `json:"t"` // device time, untrusted
	Type     uint16          `json:"type"`
	TypeName string          `json:"type_name"`
	Tamper   bool            `json:"tamper"`
	Payload  []byte          `json:"payload"`
	Decoded  json.RawMessage `json:"decoded,omitempty"` // the decoded payload, for tamper-class and service entries
	Tag      []byte          `json:"tag"`
	Head     []byte          `json:"head"`
	Received time.Time       `json:"received"`
}

func eventView(e store.Event) EventView {
	return EventView{Dev: e.Dev, Epoch: e.Epoch, N: e.N, T: e.T, Type: e.Type, TypeName: wire.EntryName(e.Type), Tamper: e.Tamper,
		Payload: e.Payload, Decoded: server.JSONObject(e.Decoded), Tag: e.Tag, Head: e.Head, Received: e.Received}
}

// AuditView is an audit record.
type AuditView struct {
	ID     int64           `json:"id"`
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"` // "pipeline", "timer" or an API token's name
	Kind   string          `json:"kind"`
	Dev    string          `json:"dev,omitempty"`
	Reason string          `json:"reason,omitempty"`
	Detail json.RawMessage `json:"detail,omitempty"` // the evidence
}

func auditView(a store.Audit) AuditView {
	return AuditView{ID: a.ID, At: a.At, Actor: a.Actor, Kind: a.Kind, Dev: a.Dev, Reason: a.Reason, Detail: server.JSONObject(a.Detail)}
}

func views[T, V any](rows []T, view func(T) V) []V {
	out := make([]V, 0, len(rows))
	for _, r := range rows {
		out = append(out, view(r))
	}
	return out
}

// VisitView is a service visit.
type VisitView struct {
	ID         string    `json:"id"`
	Dev        string    `json:"dev"`
	WorkOrder  string    `json:"work_order"`
	Technician string    `json:"technician"`
	TokenID    []byte    `json:"token_id"`
	Opened     time.Time `json:"opened"`
	Closed     time.Time `json:"closed,omitzero"`
	SealNumber string    `json:"seal_number,omitempty"`
	Result     string    `json:"result,omitempty"`
}

func visitView(v store.Visit) VisitView {
	return VisitView{ID: v.ID, Dev: v.Dev, WorkOrder: v.WorkOrder, Technician: v.Technician, TokenID: v.TokenID,
		Opened: v.Opened, Closed: v.Closed, SealNumber: v.SealNumber, Result: v.Result}
}

// ManifestInfo is a registered manifest, without its signed bytes.
type ManifestInfo struct {
	Product        string    `json:"product"`
	Version        uint64    `json:"version"`
	Root           []byte    `json:"root"`
	Created        time.Time `json:"created"`
	ReportInterval uint32    `json:"report_interval"` // seconds
}

func manifestInfo(m *store.Manifest) ManifestInfo {
	return ManifestInfo{Product: m.Product, Version: m.Version, Root: m.Root, Created: m.Created, ReportInterval: m.ReportInterval}
}

// APITokenView is an API token, without its hash.
type APITokenView struct {
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Created time.Time `json:"created"`
}

func apiTokenView(t store.APIToken) APITokenView {
	return APITokenView{Name: t.Name, Role: t.Role, Created: t.Created}
}
