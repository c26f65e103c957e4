package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"

	"github.com/fieldseal/fieldseal/internal/atomicfile"
)

// fileStamp is what a write leaves behind even when the content is put back: the inode (a
// swapped-in file is a new one), the size, the modification time and the change time
// (every write or chmod moves it, and only root with the clock can set it).
type fileStamp struct {
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
}

// stampsFile keeps the sealed files' stamps between runs, so that an agent run from cron
// (--once) still sees a file edited and restored between two runs (D2). Its digest is in
// the device state (under the slot's tag): an edited stamps file is itself evidence.
const stampsFile = "stamps.json"

// encodeStamps is the canonical form whose SHA-256 the device state keeps.
func encodeStamps(m map[string]fileStamp) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(m[k])
		b.Write(kb)
		b.WriteString(":")
		b.Write(vb)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func stampsDigest(m map[string]fileStamp) []byte {
	if len(m) == 0 {
		return nil
	}
	d := sha256.Sum256(encodeStamps(m))
	return d[:]
}

// loadStamps reads the stamps of the previous run. ok is false when a record the device
// state vouches for (digest) is missing or does not match it.
func loadStamps(dir string, digest []byte) (m map[string]fileStamp, ok bool) {
	m = map[string]fileStamp{}
	raw, err := os.ReadFile(filepath.Join(dir, stampsFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, len(digest) == 0
	}
	if err != nil || json.Unmarshal(raw, &m) != nil {
		return map[string]fileStamp{}, false
	}
	if len(digest) == 0 || !bytes.Equal(stampsDigest(m), digest) {
		return map[string]fileStamp{}, false
	}
	return m, true
}

func saveStamps(dir string, m map[string]fileStamp) error {
	return atomicfile.Write(filepath.Join(dir, stampsFile), encodeStamps(m), 0o600)
}
