package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/internal/atomicfile"
	"github.com/fieldseal/fieldseal/wire"
)

// State is what a device keeps besides its evidence log, and must survive a reboot: the
// report counter (persisted before a report leaves, so a crash can never reuse one), the
// boot count, the nonce to echo, the tokens already spent, the latched tamper flags, the
// service window and the tamper summary. It decides tamper, so it lives in the evidence
// log's state slots as wire.DeviceState, under a tag keyed by the chain key (threat D26):
// never in a plain file. The JSON tags read the state.json of earlier agents once.
type State struct {
	RSeq      uint64        `json:"rseq"`       // last report counter used
	AckedRSeq uint64        `json:"acked_rseq"` // highest report the server acknowledged
	Boot      uint32        `json:"boot"`
	Nonce     wire.HexBytes `json:"nonce,omitempty"`
	// UsedTokens holds the ids of tokens already applied, newest last (bounded: see maxUsedTokens).
	UsedTokens []wire.HexBytes `json:"used_tokens,omitempty"`
	// Latched are the State* flags that stay set until a clear token: cover-was-opened,
	// magnet, tamper-latched, code-mismatch seen.
	Latched uint32 `json:"latched"`
	// ServiceUntil is the device time at which the open service window closes (0: none).
	ServiceUntil uint64        `json:"service_until,omitempty"`
	ServiceToken wire.HexBytes `json:"service_token,omitempty"`
	// Receipt is the latest anchor receipt: with the exported log, self-contained evidence.
	Receipt        wire.HexBytes `json:"receipt,omitempty"`
	ReportInterval uint32        `json:"report_interval,omitempty"` // set by a config token
	CheckInterval  uint32        `json:"check_interval,omitempty"`

	// Service bounds the open window by the boot and the monotonic clock (threat D25).
	Service *wire.ServiceWindow `json:"-"`
	// Summary is the latched tamper summary, kept until a clear token.
	Summary *wire.TamperSummary `json:"-"`
	// Seen is the newest log entry this state accounts for.
	Seen uint64 `json:"-"`
	// StampsDigest vouches for the sealed files' stamps kept between runs.
	StampsDigest []byte `json:"-"`
	// BadDownlinks counts rejected downlinks since the last accepted ack (MaxBadDownlinks).
	BadDownlinks uint32 `json:"bad_downlinks,omitempty"`
}

// maxUsedTokens bounds the spent-token list. A token older than this many others has long
// expired (tokens expire in report-counter terms), so forgetting it reopens nothing.
const maxUsedTokens = 64

// encodeState is the slot form of st (wire.DeviceState, deterministic CBOR).
func encodeState(st *State) ([]byte, error) {
	ds := wire.DeviceState{Boot: st.Boot, RSeq: st.RSeq, AckedRSeq: st.AckedRSeq, Nonce: st.Nonce,
		Latched: st.Latched, ServiceUntil: st.ServiceUntil, CheckInterval: st.CheckInterval,
		ReportInterval: st.ReportInterval, Summary: st.Summary, Service: st.Service, Seen: st.Seen,
		Receipt: st.Receipt, StampsDigest: st.StampsDigest, BadDownlinks: st.BadDownlinks}
	for _, id := range st.UsedTokens {
		ds.UsedTokens = append(ds.UsedTokens, wire.UsedToken{ID: id})
	}
	if ds.Service != nil && len(st.ServiceToken) > 0 {
		ds.Service.TokenID = st.ServiceToken
	}
	return wire.Marshal(&ds)
}

// decodeState reads the slot form; empty means a state never written.
func decodeState(b []byte) (*State, error) {
	st := &State{}
	if len(b) == 0 {
		return st, nil
	}
	var ds wire.DeviceState
	if err := wire.Unmarshal(b, &ds); err != nil {
		return nil, fmt.Errorf("device state in the state slot: %w", err)
	}
	*st = State{RSeq: ds.RSeq, AckedRSeq: ds.AckedRSeq, Boot: ds.Boot, Nonce: ds.Nonce, Latched: ds.Latched,
		ServiceUntil: ds.ServiceUntil, Receipt: ds.Receipt, ReportInterval: ds.ReportInterval,
		CheckInterval: ds.CheckInterval, Service: ds.Service, Summary: ds.Summary, Seen: ds.Seen,
		StampsDigest: ds.StampsDigest, BadDownlinks: ds.BadDownlinks}
	for _, u := range ds.UsedTokens {
		st.UsedTokens = append(st.UsedTokens, u.ID)
	}
	if ds.Service != nil {
		st.ServiceToken = ds.Service.TokenID
	}
	return st, nil
}

// legacyStateFile is where agents before the slot state kept State as JSON.
const legacyStateFile = "state.json"

// readLegacyState reads dir/state.json of an earlier agent, or nil if there is none.
func readLegacyState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, legacyStateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("agent state %s: %w", filepath.Join(dir, legacyStateFile), err)
	}
	return &st, nil
}

// latchFor is what a tamper-class entry latches (0: nothing). The same rule applies when
// the entry is logged and when recovery completes it from the log.
func latchFor(typ uint16, payload []byte) uint32 {
	switch typ {
	case wire.EntryCheckFail:
		return wire.StateCodeMismatch | wire.StateTamperLatched
	case wire.EntryCoverOpen:
		if v, err := wire.DecodePayload(typ, payload); err == nil && v.(*wire.CoverOpenPayload).Source == wire.CoverSourceService {
			return 0 // a technician inside a service window
		}
		return wire.StateCoverWasOpen | wire.StateTamperLatched
	case wire.EntryMagnet:
		return wire.StateMagnet | wire.StateTamperLatched
	case wire.EntryRefused, wire.EntryErased, wire.EntryRollbackDetected, wire.EntryLogCorrupt:
		return wire.StateTamperLatched
	}
	return 0
}

// account applies entry e to the state: latched flags, the tamper summary, spent tokens.
// Used for every entry the device logs and, at start, for entries recovery completed
// beyond what the slot's state had seen (a copied-back slot must not forget them, D22).
func (st *State) account(e wire.Entry) {
	if e.N <= st.Seen {
		return
	}
	st.Seen = e.N
	if f := latchFor(e.Type, e.Payload); f != 0 {
		st.Latched |= f
		ds := wire.DeviceState{Summary: st.Summary}
		what := fschain.Summary(e)
		if i := len(wire.EntryName(e.Type)) + 2; len(what) > i {
			what = what[i:]
		}
		ds.NoteTamper(e.N, e.T, e.Type, what)
		st.Summary = ds.Summary
	}
	var id []byte
	if e.Type == wire.EntryTamperCleared {
		st.Latched, st.Summary = 0, nil
	}
	if e.Type == wire.EntryTamperCleared || e.Type == wire.EntryServiceBegin {
		switch p, _ := wire.DecodePayload(e.Type, e.Payload); p := p.(type) {
		case *wire.TamperClearedPayload:
			id = p.TokenID
		case *wire.ServiceBeginPayload:
			id = p.TokenID
		}
	}
	if len(id) > 0 && !st.spent(id) {
		st.UsedTokens = append(st.UsedTokens, id)
		if len(st.UsedTokens) > maxUsedTokens {
			st.UsedTokens = st.UsedTokens[len(st.UsedTokens)-maxUsedTokens:]
		}
	}
}

func (st *State) spent(id []byte) bool {
	for _, u := range st.UsedTokens {
		if string(u) == string(id) {
			return true
		}
	}
	return false
}

// EraseChainKeyFile rewrites the bundle file at path without K_1 (atomically, owner-only):
// for the agent's own copy in its data folder, never the file an operator passed in.
func EraseChainKeyFile(path string, b wire.Bundle) error {
	b.ChainKey = nil
	raw, err := json.MarshalIndent(&b, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(raw, '\n'))
}

// writeFileAtomic replaces path with data, mode 0600, so that a power cut leaves either
// the old or the new content (atomicfile.Write: the file and its folder are fsynced).
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o600) }
