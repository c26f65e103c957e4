package fschain

import (
	"bytes"
	"fmt"
)

// ExportState returns the writer's committed state in the slot format of docs/PROTOCOL.md.
// It holds the current chain key K_{n+1}: treat it like the device itself. Together with
// Export it moves a log to other storage (Import), e.g. when an agent changes its data folder.
func (w *Writer) ExportState() []byte { return w.s.encode() }

// Import writes a log exported with ExportState and Export into empty storage and opens
// it. The entries must reproduce the state's head from its base, so a state and a log
// that do not belong together are refused.
func Import(st Storage, stateBytes []byte, x *Export) (*Writer, error) {
	s, err := decodeState(stateBytes)
	if err != nil {
		return nil, fmt.Errorf("fschain: import: %w", err)
	}
	if x.Dev != s.Dev || x.Epoch != s.Epoch || x.BaseN != s.BaseN || x.N != s.N ||
		!bytes.Equal(x.BaseH, s.BaseH[:]) || !bytes.Equal(x.Head, s.Head[:]) {
		return nil, fmt.Errorf("fschain: import: state (%s, n=%d, base %d) and log (%s, n=%d, base %d) differ", s.Dev, s.N, s.BaseN, x.Dev, x.N, x.BaseN)
	}
	a := Anchor{Dev: s.Dev, Epoch: s.Epoch, N: s.BaseN, Head: s.BaseH}
	if _, _, err := VerifyHeads(a, x.Segment(), nil); err != nil {
		return nil, fmt.Errorf("fschain: import: %w", err)
	}
	for i := 0; i < 2; i++ {
		b, err := st.ReadSlot(i)
		if err != nil {
			return nil, err
		}
		if _, err := decodeState(b); err == nil {
			return nil, ErrExists
		}
	}
	var data []byte
	for i := range x.Entries {
		data = appendRecord(data, &x.Entries[i])
	}
	if err := st.ReplaceLog(data); err != nil {
		return nil, err
	}
	s.Gen = 1
	if err := st.WriteSlot(0, 0, s.encode()); err != nil {
		return nil, err
	}
	if err := st.WriteSlot(1, slotOffKey, make([]byte, slotKeySeal)); err != nil {
		return nil, err
	}
	w, _, err := Open(st)
	return w, err
}
