package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/fieldseal/fieldseal/internal/atomicfile"
	"github.com/fieldseal/fieldseal/wire"
)

// State is what a device keeps besides its evidence log, and must survive a reboot: the
// report counter (persisted before a report leaves, so a crash can never reuse one), the
// boot count, the nonce to echo, the tokens already spent and the latched tamper flags.
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
}

// maxUsedTokens bounds the spent-token list. A token older than this many others has long
// expired (tokens expire in report-counter terms), so forgetting it reopens nothing.
const maxUsedTokens = 64

// StateStore persists State. Save must be durable when it returns.
type StateStore interface {
	Load() (st *State, found bool, err error)
	Save(st *State) error
}

// MemState keeps State in memory: simulated devices and tests.
type MemState struct {
	mu sync.Mutex
	st *State
}

func (m *MemState) Load() (*State, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st == nil {
		return &State{}, false, nil
	}
	c := *m.st
	c.UsedTokens = append([]wire.HexBytes(nil), m.st.UsedTokens...)
	return &c, true, nil
}

func (m *MemState) Save(st *State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *st
	c.UsedTokens = append([]wire.HexBytes(nil), st.UsedTokens...)
	m.st = &c
	return nil
}

// FileState keeps State as JSON in dir/state.json, replaced atomically (write, fsync,
// rename, fsync the folder) so a power cut leaves either the old or the new state.
type FileState struct{ Dir string }

func (f FileState) path() string { return filepath.Join(f.Dir, "state.json") }

func (f FileState) Load() (*State, bool, error) {
	data, err := os.ReadFile(f.path())
	if os.IsNotExist(err) {
		return &State{}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, false, fmt.Errorf("agent state %s: %w", f.path(), err)
	}
	return &st, true, nil
}

func (f FileState) Save(st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(f.path(), data, 0o600)
}

// EraseChainKeyFile rewrites the device's bundle file at path without K_1 (atomically,
// owner-only): once the evidence log exists it holds only evolved keys, and a K_1 left on
// the device would let whoever reads it re-tag every entry not yet reported. The operator
// keeps the original bundle for audits (`fieldseal log verify --chain-key`).
func EraseChainKeyFile(path string, b wire.Bundle) error {
	b.ChainKey = nil
	raw, err := json.MarshalIndent(&b, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(raw, '\n'), 0o600)
}
