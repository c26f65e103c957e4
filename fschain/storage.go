package fschain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Storage is where a Writer keeps its log area and its two state slots. Every method
// that changes storage is one explicit, durable write, so that tests can cut the power in
// the middle of any of them (MemStorage.BeforeWrite).
//
// Implementations must not keep or change the byte slices they are given.
//
// AppendLog and WriteSlot may tear: after a power cut any prefix of the data may have
// reached storage. TruncateLog and ReplaceLog must be atomic: after a power cut storage
// holds either the old or the new content (FileStorage uses ftruncate and rename).
type Storage interface {
	// ReadLog returns the whole log area.
	ReadLog() ([]byte, error)
	// AppendLog appends rec to the log area and makes it durable.
	AppendLog(rec []byte) error
	// TruncateLog shortens the log area to size bytes, durably: discards a torn tail.
	TruncateLog(size int) error
	// ReplaceLog atomically replaces the log area with data: pruning.
	ReplaceLog(data []byte) error
	// ReadSlot returns state slot i (0 or 1), empty if never written.
	ReadSlot(i int) ([]byte, error)
	// WriteSlot writes data at offset off of slot i and makes it durable.
	WriteSlot(i, off int, data []byte) error
}

// ErrPowerCut is returned by a MemStorage write that BeforeWrite chose to cut, and by
// every write after it until Revive: the simulated device is off.
var ErrPowerCut = errors.New("power cut")

// Write kinds seen by MemStorage.BeforeWrite.
const (
	WriteLogAppend   = "log-append"
	WriteLogTruncate = "log-truncate"
	WriteLogReplace  = "log-replace"
	WriteStateSlot   = "slot"
)

// WriteOp describes one storage write to MemStorage.BeforeWrite.
type WriteOp struct {
	Seq  int    // 0-based count of writes since the storage was made (or last Revive)
	Kind string // Write* kinds
	Slot int    // for WriteStateSlot
	Off  int    // for WriteStateSlot: offset in the slot; for appends: log size before the write
	Data []byte // bytes to write (nil for a truncate)
}

// MemStorage is an in-memory Storage for tests and benchmarks, with a hook to tear writes.
type MemStorage struct {
	mu    sync.Mutex
	log   []byte
	slots [2][]byte
	dead  bool
	seq   int

	// BeforeWrite, when set, is called before each write. Returning -1 lets the write
	// complete. Returning k ≥ 0 cuts the power: for AppendLog and WriteSlot only the first
	// k bytes of Data reach storage; TruncateLog and ReplaceLog are applied only if
	// k ≥ max(1, len(Data)). Either way the write and all later ones fail with
	// ErrPowerCut until Revive.
	BeforeWrite func(op WriteOp) int
}

// NewMemStorage returns an empty in-memory storage.
func NewMemStorage() *MemStorage { return &MemStorage{} }

// Revive powers the simulated device back on: writes work again and BeforeWrite is cleared.
func (m *MemStorage) Revive() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dead, m.BeforeWrite, m.seq = false, nil, 0
}

// Clone returns an independent copy: a flash snapshot (threat D13).
func (m *MemStorage) Clone() *MemStorage {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &MemStorage{log: append([]byte(nil), m.log...)}
	for i := range m.slots {
		c.slots[i] = append([]byte(nil), m.slots[i]...)
	}
	return c
}

// Bytes returns everything stored — what a thief who dumps the flash sees.
func (m *MemStorage) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]byte(nil), m.log...)
	out = append(out, m.slots[0]...)
	return append(out, m.slots[1]...)
}

// Writes returns the number of writes since creation or the last Revive.
func (m *MemStorage) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq
}

// cut returns how many bytes of op may be written and whether the power goes off.
func (m *MemStorage) cut(op WriteOp) (keep int, off bool, err error) {
	if m.dead {
		return 0, true, ErrPowerCut
	}
	op.Seq = m.seq
	m.seq++
	if m.BeforeWrite == nil {
		return len(op.Data), false, nil
	}
	k := m.BeforeWrite(op)
	if k < 0 {
		return len(op.Data), false, nil
	}
	m.dead = true
	return min(k, len(op.Data)), true, nil
}

func (m *MemStorage) ReadLog() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.log...), nil
}

func (m *MemStorage) AppendLog(rec []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep, off, err := m.cut(WriteOp{Kind: WriteLogAppend, Off: len(m.log), Data: rec})
	if err != nil {
		return err
	}
	m.log = append(m.log, rec[:keep]...)
	if off {
		return ErrPowerCut
	}
	return nil
}

func (m *MemStorage) TruncateLog(size int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size < 0 || size > len(m.log) {
		return fmt.Errorf("truncate log to %d of %d bytes", size, len(m.log))
	}
	if m.dead {
		return ErrPowerCut
	}
	op := WriteOp{Seq: m.seq, Kind: WriteLogTruncate, Off: size}
	m.seq++
	k := -1
	if m.BeforeWrite != nil {
		k = m.BeforeWrite(op)
	}
	if k < 0 || k >= 1 {
		m.log = m.log[:size:size]
	}
	if k >= 0 {
		m.dead = true
		return ErrPowerCut
	}
	return nil
}

func (m *MemStorage) ReplaceLog(data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead {
		return ErrPowerCut
	}
	op := WriteOp{Seq: m.seq, Kind: WriteLogReplace, Data: data}
	m.seq++
	k := -1
	if m.BeforeWrite != nil {
		k = m.BeforeWrite(op)
	}
	if k < 0 || k >= max(1, len(data)) {
		m.log = append([]byte(nil), data...)
	}
	if k >= 0 {
		m.dead = true
		return ErrPowerCut
	}
	return nil
}

func (m *MemStorage) ReadSlot(i int) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i != 0 && i != 1 {
		return nil, fmt.Errorf("no slot %d", i)
	}
	return append([]byte(nil), m.slots[i]...), nil
}

func (m *MemStorage) WriteSlot(i, off int, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i != 0 && i != 1 || off < 0 {
		return fmt.Errorf("no slot %d offset %d", i, off)
	}
	keep, cutoff, err := m.cut(WriteOp{Kind: WriteStateSlot, Slot: i, Off: off, Data: data})
	if err != nil {
		return err
	}
	s := m.slots[i]
	if need := off + keep; need > len(s) {
		s = append(s, make([]byte, need-len(s))...)
	}
	copy(s[off:], data[:keep])
	m.slots[i] = s
	if cutoff {
		return ErrPowerCut
	}
	return nil
}

// FileStorage keeps the log area and the slots in three files of a folder, each write
// followed by fsync: for the Go agent on Linux-class devices.
//
// The folder holds log, slot-a and slot-b. On a journaling or copy-on-write filesystem
// an overwritten key may survive in old blocks; docs/HARDENING.md says where to put the
// state slots on such devices.
type FileStorage struct {
	dir string
	mu  sync.Mutex
}

var slotNames = [2]string{"slot-a", "slot-b"}

// NewFileStorage opens (creating it if needed) a storage folder.
func NewFileStorage(dir string) (*FileStorage, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &FileStorage{dir: dir}, nil
}

func (f *FileStorage) path(name string) string { return filepath.Join(f.dir, name) }

func readOrEmpty(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (f *FileStorage) ReadLog() ([]byte, error) { return readOrEmpty(f.path("log")) }

func (f *FileStorage) AppendLog(rec []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fh, err := os.OpenFile(f.path("log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(rec); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

func (f *FileStorage) TruncateLog(size int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fh, err := os.OpenFile(f.path("log"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := fh.Truncate(int64(size)); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

func (f *FileStorage) ReplaceLog(data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	tmp := f.path("log.tmp")
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, f.path("log")); err != nil {
		return err
	}
	return f.syncDir()
}

func (f *FileStorage) syncDir() error {
	d, err := os.Open(f.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (f *FileStorage) ReadSlot(i int) ([]byte, error) {
	if i != 0 && i != 1 {
		return nil, fmt.Errorf("no slot %d", i)
	}
	return readOrEmpty(f.path(slotNames[i]))
}

func (f *FileStorage) WriteSlot(i, off int, data []byte) error {
	if i != 0 && i != 1 || off < 0 {
		return fmt.Errorf("no slot %d offset %d", i, off)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.path(slotNames[i])
	_, statErr := os.Stat(p)
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.WriteAt(data, int64(off)); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if errors.Is(statErr, os.ErrNotExist) {
		return f.syncDir()
	}
	return nil
}
