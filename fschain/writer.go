package fschain

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fieldseal/fieldseal/wire"
)

// Writer errors.
var (
	// ErrDropped is returned by Append for a routine entry while the log is at capacity: the
	// entry was counted, not stored; an overflow entry records the count when space returns.
	// The Writer stays usable.
	ErrDropped = errors.New("log full: routine entry counted, not stored")
	// ErrExists is returned by Create when the storage already holds a log.
	ErrExists = errors.New("storage already holds an evidence log")
	// ErrNoState is returned by Open when neither state slot is valid.
	ErrNoState = errors.New("no valid state slot: device not provisioned or state destroyed")
	// ErrCorrupt is returned by Open when committed entries are missing or altered in storage.
	ErrCorrupt = errors.New("evidence log storage corrupt")
)

// Writer is the device side of the log: it appends entries, keeps exactly one chain key
// and survives a power cut at any byte of any write (fschain.md, "Device state and crash
// safety"). A Writer is not safe for concurrent use. After a storage error it refuses
// further work: reopen the storage with Open.
type Writer struct {
	st       Storage
	c        *chain
	s        state // current committed state
	active   int   // slot holding s
	entries  []wire.Entry
	heads    []Hash // heads[i] is the head of entries[i]
	capacity int
	err      error
	// extForged: the device state loaded at Open was whole (CRC) but its tag did not verify.
	extForged bool
	// rolledBack: what Open found that only a rolled-back or edited state can explain.
	rolledBack string
}

// Create provisions a new log on empty storage: state {n=0, h_0, K_1, seal_0} in slot A.
func Create(st Storage, dev string, epoch uint32, k1 Key) (*Writer, error) {
	if !wire.ValidDeviceID(dev) {
		return nil, fmt.Errorf("fschain: invalid device id %q", dev)
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
	w := &Writer{st: st, c: newChain(dev, epoch), active: 1}
	h0 := GenesisHead(dev, epoch)
	w.s = state{Gen: 0, Dev: dev, Epoch: epoch, Head: h0, Key: k1, BaseH: h0}
	w.s.Seal = w.c.seal(&k1, 0, &h0)
	if err := st.ReplaceLog(nil); err != nil {
		return nil, err
	}
	if err := w.commit(w.s); err != nil {
		return nil, err
	}
	return w, nil
}

// SetCapacity bounds the number of stored entries (0, the default, means unbounded).
// Beyond it routine entries are counted, not stored; tamper-class entries are always
// stored, exceeding the capacity: size the log area for capacity plus the tamper entries
// a device may log while offline (docs/PROTOCOL.md, "Capacity").
func (w *Writer) SetCapacity(entries int) { w.capacity = entries }

// Ext is the device's own state kept in the slots with the chain state (wire.DeviceState
// for the agent and the guard), nil if none. ExtAuthentic says whether its tag verified at
// Open: false for state that was edited in storage (or written by an older guard).
func (w *Writer) Ext() []byte { return cp(w.s.Ext) }

// ExtAuthentic reports whether the device state loaded at Open carried a valid tag.
func (w *Writer) ExtAuthentic() bool { return !w.extForged }

// StageExt sets the device state that the next commit (the next Append) writes with the
// chain state: an entry and the state change it causes become durable in one slot write.
func (w *Writer) StageExt(b []byte) error {
	if len(b) > MaxExt {
		return fmt.Errorf("fschain: device state is %d bytes, limit %d", len(b), MaxExt)
	}
	w.s.Ext, w.s.ExtAuth = cp(b), true
	return nil
}

// SaveExt writes the device state now (steps 2–3 with the chain state unchanged).
func (w *Writer) SaveExt(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if err := w.StageExt(b); err != nil {
		return err
	}
	return w.commit(w.s)
}

// commit writes s to the inactive slot with the next generation (step 2), then zeroes
// the key and seal of the slot that held the previous state (step 3).
func (w *Writer) commit(s state) error {
	s.Gen = w.s.Gen + 1
	next := 1 - w.active
	if err := w.st.WriteSlot(next, 0, s.encode()); err != nil {
		w.err = err
		return err
	}
	old := w.active
	w.s, w.active = s, next
	if err := w.st.WriteSlot(old, slotOffKey, make([]byte, slotKeySeal)); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Append adds an entry with device time t and returns it as sent on the wire. At capacity
// a routine entry is counted and ErrDropped returned. Before the first entry stored after
// drops, an overflow entry with the count is appended.
func (w *Writer) Append(t uint64, typ uint16, payload []byte) (wire.Entry, error) {
	if w.err != nil {
		return wire.Entry{}, w.err
	}
	if len(payload) > wire.MaxPayload {
		return wire.Entry{}, fmt.Errorf("fschain: payload is %d bytes, limit %d", len(payload), wire.MaxPayload)
	}
	if !w.full() && w.s.Dropped > 0 && typ != wire.EntryOverflow {
		p := wire.MustMarshal(&wire.OverflowPayload{Dropped: w.s.Dropped})
		if _, err := w.appendEntry(t, wire.EntryOverflow, p); err != nil {
			return wire.Entry{}, err
		}
	}
	if w.full() && !wire.IsTamper(typ) {
		s := w.s
		if s.Dropped < ^uint32(0) {
			s.Dropped++
		}
		if err := w.commit(s); err != nil {
			return wire.Entry{}, err
		}
		return wire.Entry{}, ErrDropped
	}
	return w.appendEntry(t, typ, payload)
}

func (w *Writer) full() bool { return w.capacity > 0 && len(w.entries) >= w.capacity }

// appendEntry runs steps 1–3 of fschain.md for one entry.
func (w *Writer) appendEntry(t uint64, typ uint16, payload []byte) (wire.Entry, error) {
	s := w.s
	n := s.N + 1
	tag, head := w.c.step(&s.Key, &s.Head, n, t, typ, payload)
	e := wire.Entry{N: n, T: t, Type: typ, Payload: append([]byte(nil), payload...), Tag: tag[:]}
	// Step 1: the record, durable. From here on the entry is committed.
	if err := w.st.AppendLog(EncodeRecord(e)); err != nil {
		w.err = err
		return wire.Entry{}, err
	}
	if err := w.advance(e, head); err != nil {
		return wire.Entry{}, err
	}
	return e, nil
}

// advance commits the state after entry e (steps 2–3) and records e in memory.
func (w *Writer) advance(e wire.Entry, head Hash) error {
	s := w.s
	s.N, s.Head = e.N, head
	s.Key = Evolve(s.Key)
	s.Seal = w.c.seal(&s.Key, s.N, &s.Head)
	if typ := e.Type; typ == wire.EntryOverflow {
		s.Dropped = 0
	}
	if err := w.commit(s); err != nil {
		return err
	}
	w.entries = append(w.entries, e)
	w.heads = append(w.heads, head)
	return nil
}

// State returns the claimed (n, h_n, seal_n) that goes into a report.
func (w *Writer) State() (n uint64, head Hash, seal [32]byte) { return w.s.N, w.s.Head, w.s.Seal }

// Dev and Epoch identify the log.
func (w *Writer) Dev() string     { return w.s.Dev }
func (w *Writer) Epoch() uint32   { return w.s.Epoch }
func (w *Writer) Dropped() uint32 { return w.s.Dropped }

// Base returns (base_n, base_h): the entry just before the oldest one still stored.
func (w *Writer) Base() (uint64, Hash) { return w.s.BaseN, w.s.BaseH }

// HeadAt returns the head of a stored entry (or of the base).
func (w *Writer) HeadAt(n uint64) (Hash, bool) {
	if n == w.s.BaseN {
		return w.s.BaseH, true
	}
	if n < w.s.BaseN || n > w.s.N {
		return Hash{}, false
	}
	return w.heads[n-w.s.BaseN-1], true
}

// Segment returns all stored, unacknowledged entries since the base with the claimed
// n, head and seal: the log part of a report.
func (w *Writer) Segment() wire.Segment {
	es := make([]wire.Entry, len(w.entries))
	copy(es, w.entries)
	return wire.Segment{First: w.s.BaseN + 1, Entries: es, N: w.s.N, Head: cp(w.s.Head[:]), Seal: cp(w.s.Seal[:])}
}

func cp(b []byte) []byte { return append([]byte(nil), b...) }

// Prune deletes the entries ≤ upTo. Call it only after an authenticated ack (downlink key
// T) whose anchor is (upTo, head); head must match the stored entry upTo. Pruning below
// the base is a no-op.
func (w *Writer) Prune(upTo uint64, head Hash) error {
	if w.err != nil {
		return w.err
	}
	if upTo <= w.s.BaseN {
		return nil
	}
	h, ok := w.HeadAt(upTo)
	if !ok {
		return fmt.Errorf("fschain: prune up to %d, but the log ends at %d", upTo, w.s.N)
	}
	if h != head {
		return fmt.Errorf("fschain: prune up to %d: acked head %x is not the stored head %x", upTo, head[:8], h[:8])
	}
	s := w.s
	s.BaseN, s.BaseH = upTo, head
	// The new base is durable first: records ≤ base_n left in the log are ignored at boot.
	if err := w.commit(s); err != nil {
		return err
	}
	cut := len(w.entries) - int(w.s.N-upTo)
	rest := append([]wire.Entry(nil), w.entries[cut:]...)
	var data []byte
	for i := range rest {
		data = appendRecord(data, &rest[i])
	}
	if err := w.st.ReplaceLog(data); err != nil {
		w.err = err
		return err
	}
	w.entries = rest
	w.heads = append([]Hash(nil), w.heads[cut:]...)
	return nil
}

// loadState reads the valid slot with the highest generation.
func loadState(st Storage) (*Writer, error) {
	var best *state
	active := -1
	for j := 0; j < 2; j++ {
		b, err := st.ReadSlot(j)
		if err != nil {
			return nil, err
		}
		s, err := decodeState(b)
		if err != nil {
			continue
		}
		if best == nil || s.Gen > best.Gen {
			best, active = s, j
		}
	}
	if best == nil {
		return nil, ErrNoState
	}
	w := &Writer{st: st, c: newChain(best.Dev, best.Epoch), s: *best, active: active}
	w.extForged = best.Ext != nil && !best.ExtAuth
	return w, nil
}

// load reads the committed state and entries without writing anything. It returns the
// parsed records, the index of the first one after the committed entries, the byte length
// of the accepted records and the whole log area.
func load(st Storage) (w *Writer, active int, recs []wire.Entry, i, end int, data []byte, err error) {
	if w, err = loadState(st); err != nil {
		return nil, 0, nil, 0, 0, nil, err
	}
	active = w.active
	data, err = st.ReadLog()
	if err != nil {
		return nil, 0, nil, 0, 0, nil, err
	}
	recs, _ = DecodeRecords(data)
	s := &w.s
	// Committed entries: base_n+1 .. n, in order, reproducing h_n.
	prev := s.BaseH
	for ; i < len(recs) && recs[i].N <= s.BaseN; i++ {
		end += recOverhead + len(recs[i].Payload)
	}
	for want := s.BaseN + 1; want <= s.N; want++ {
		if i >= len(recs) || recs[i].N != want {
			return nil, 0, nil, 0, 0, nil, fmt.Errorf("%w: entry %d of %d missing", ErrCorrupt, want, s.N)
		}
		e := recs[i]
		e.Payload, e.Tag = cp(e.Payload), cp(e.Tag)
		prev = w.c.headOf(&prev, e.N, e.T, e.Type, e.Payload, e.Tag)
		w.entries = append(w.entries, e)
		w.heads = append(w.heads, prev)
		end += recOverhead + len(e.Payload)
		i++
	}
	if prev != s.Head {
		return nil, 0, nil, 0, 0, nil, fmt.Errorf("%w: stored entries do not reproduce head %d", ErrCorrupt, s.N)
	}
	return w, active, recs, i, end, data, nil
}

// Open loads a log at boot: the valid slot with the highest generation, then the records
// after its base. Every whole record n+1, n+2, … whose tag verifies under the evolving key
// was committed: its transition is completed (a slot is never trusted over a record that
// verifies). A torn tail was never committed: it is cut off. Either way a recovered entry
// is appended and recovered is true.
//
// A power cut leaves at most one committed record beyond the slot (record n_s+1 written,
// slot not yet), and only a torn one after it. More than one completed record, or a whole
// record that does not continue the chain, can only come from a state slot copied back
// or edited (threat D22): Open then logs a tamper-class rollback-detected entry instead of
// a routine recovered one (RolledBack says what it found).
func Open(st Storage) (w *Writer, recovered bool, err error) { return OpenAt(st, 0) }

// RolledBack is what Open found that a power cut cannot explain, or "".
func (w *Writer) RolledBack() string { return w.rolledBack }

// OpenAt is Open with the device time now for a recovered entry; 0 means the time of the
// last stored entry (Open's choice, for devices whose clock is not yet set at boot).
func OpenAt(st Storage, now uint64) (w *Writer, recovered bool, err error) {
	w, active, recs, i, end, data, err := load(st)
	if err != nil {
		return nil, false, err
	}
	s := &w.s
	slotN := s.N
	// Finish a stale or torn step 3: the other slot still holds (part of) an old key.
	if ob, err := st.ReadSlot(1 - active); err != nil {
		return nil, false, err
	} else if len(ob) > slotOffKey && !allZero(ob[slotOffKey:min(len(ob), slotOffKey+slotKeySeal)]) {
		if err := st.WriteSlot(1-active, slotOffKey, make([]byte, slotKeySeal)); err != nil {
			return nil, false, err
		}
	}
	completed := 0
	for ; i < len(recs) && recs[i].N == s.N+1; i++ {
		e := recs[i]
		tag, head := w.c.step(&s.Key, &s.Head, e.N, e.T, e.Type, e.Payload)
		if string(tag[:]) != string(e.Tag) {
			break
		}
		e.Payload, e.Tag = cp(e.Payload), cp(e.Tag)
		if err := w.advance(e, head); err != nil {
			return nil, false, err
		}
		end += recOverhead + len(e.Payload)
		completed++
	}
	var what []string
	if completed == 1 && slotN+1 == s.N {
		what = append(what, fmt.Sprintf("completed entry %d after a power cut", s.N))
	} else if completed > 1 {
		w.rolledBack = fmt.Sprintf("state slot at entry %d, but entries %d..%d in the log verify: completed them", slotN, slotN+1, s.N)
	}
	if whole := len(recs) - i; whole > 0 {
		// CRC-valid records a power cut cannot have left: they do not continue the chain.
		r := fmt.Sprintf("discarded %d whole record(s) after entry %d that do not continue the chain (first: n=%d)", whole, s.N, recs[i].N)
		if w.rolledBack != "" {
			w.rolledBack += "; " + r
		} else {
			w.rolledBack = r
		}
	}
	if end < len(data) {
		if err := st.TruncateLog(end); err != nil {
			return nil, false, err
		}
		if w.rolledBack == "" {
			torn := fmt.Sprintf("discarded %d bytes of a torn or invalid record after entry %d", len(data)-end, s.N)
			if completed == 1 {
				what = []string{fmt.Sprintf("completed entry %d; %s", s.N, torn)}
			} else {
				what = append(what, torn)
			}
		}
	}
	t := now
	if t == 0 && len(w.entries) > 0 {
		t = w.entries[len(w.entries)-1].T
	}
	if w.rolledBack != "" {
		p := wire.MustMarshal(&wire.RollbackPayload{What: w.rolledBack, SlotN: slotN, LogN: s.N})
		if _, err := w.appendEntry(t, wire.EntryRollbackDetected, p); err != nil {
			return nil, true, err
		}
		return w, true, nil
	}
	if len(what) == 0 {
		return w, false, nil
	}
	if _, err := w.appendEntry(t, wire.EntryRecovered, wire.MustMarshal(&wire.RecoveredPayload{What: strings.Join(what, "; ")})); err != nil {
		return nil, true, err
	}
	return w, true, nil
}

// Salvage opens a log whose committed entries are missing or altered in storage (Open
// returned ErrCorrupt) so that the device can still report it: the chain state of the
// newest valid slot is kept (n, h_n, K_{n+1}: the device can still seal), the unreadable
// entries are given up (base_n = n), and a tamper-class log-corrupt entry n+1 says what was
// found. The server, whose anchor is then below the new base, sees a gap; either way the
// device reports tamper instead of falling silent (threat D26). Take a copy of the storage
// first if it is wanted for forensics: Salvage rewrites the log area.
func Salvage(st Storage, now uint64) (*Writer, error) {
	w, err := loadState(st)
	if err != nil {
		return nil, err
	}
	_, _, _, _, _, _, why := load(st)
	what := "evidence log storage corrupt"
	if why != nil {
		what = why.Error()
	}
	s := w.s
	lost := s.N - s.BaseN
	s.BaseN, s.BaseH = s.N, s.Head
	if err := w.commit(s); err != nil {
		return nil, err
	}
	if err := st.ReplaceLog(nil); err != nil {
		w.err = err
		return nil, err
	}
	p := wire.MustMarshal(&wire.LogCorruptPayload{What: what, Lost: lost, BaseN: s.N - lost})
	if _, err := w.appendEntry(now, wire.EntryLogCorrupt, p); err != nil {
		return nil, err
	}
	return w, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ReadExport reads the committed log from storage without changing anything: for
// `fieldseal log export` on a device's storage folder. A torn tail or an uncommitted
// transition is left for Open to repair.
func ReadExport(st Storage) (*Export, error) {
	w, _, _, _, _, _, err := load(st)
	if err != nil {
		return nil, err
	}
	x := w.Export()
	// The device's latched tamper summary and its latest receipt (never its keys).
	var ds wire.DeviceState
	if len(w.s.Ext) > 0 && wire.Unmarshal(w.s.Ext, &ds) == nil {
		x.Summary = ds.Summary
		x.Latched = ds.Latched & (wire.StateCoverWasOpen | wire.StateMagnet | wire.StateTamperLatched)
		if len(ds.Receipt) > 0 {
			x.Receipts = append(x.Receipts, ds.Receipt)
		}
	}
	return x, nil
}
