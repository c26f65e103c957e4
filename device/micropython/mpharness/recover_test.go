package mpharness

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/testenv"
)

// recoverVector is a storage vector of testdata/vectors/fschain/storage (README there).
type recoverVector struct {
	Log   string `json:"log"`
	SlotA string `json:"slot_a"`
	SlotB string `json:"slot_b"`
	Want  struct {
		SlotN     uint64   `json:"slot_n"`
		Completed []uint64 `json:"completed"`
		Entries   []uint16 `json:"entries"`
		Latched   uint32   `json:"latched"`
		Summary   *struct {
			FirstN    uint64            `json:"first_n"`
			FirstType uint16            `json:"first_type"`
			Counts    map[string]uint32 `json:"counts"`
		} `json:"summary"`
	}
}

const guardState = `s = D.x["sum"]
result = {"fl": D.x["fl"], "entries": [[e[0], e[2]] for e in D.chain.entries()],
          "first_n": s[1] if s else 0, "first_type": s[2] if s else 0,
          "counts": {str(k): c for k, c in s[5].items()} if s else {}, "has_sum": bool(s)}`

// D22, D26 on the MicroPython guard, with the same storage vectors the Go agent passes
// (agent TestThreatD22_AgentRecoverVectors): the guard boots on the storage a copied-back
// slot, a foreign record, an edited device state or a power cut left, and completes, logs,
// latches and summarises exactly as the agent does.
func TestThreatD22_GuardRecoverVectors(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "testdata", "vectors", "fschain", "storage")
	files, _ := filepath.Glob(filepath.Join(dir, "recover-*.json"))
	if len(files) < 4 {
		t.Fatalf("%d recover vectors", len(files))
	}
	r := newRig(t, nil, AppOptions{})
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, _ := os.ReadFile(f)
			var v recoverVector
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			r.start()
			os.RemoveAll(r.opts.Int)
			os.MkdirAll(r.opts.Int, 0o755)
			for name, h := range map[string]string{"log": v.Log, "slot-a": v.SlotA, "slot-b": v.SlotB} {
				b, _ := hex.DecodeString(h)
				os.WriteFile(filepath.Join(r.opts.Int, name), b, 0o600)
			}
			r.boot()
			res := r.step(Cmd{"cmd": "exec", "code": guardState})
			var st struct {
				Fl        uint32            `json:"fl"`
				Entries   [][2]uint64       `json:"entries"`
				FirstN    uint64            `json:"first_n"`
				FirstType uint16            `json:"first_type"`
				Counts    map[string]uint32 `json:"counts"`
				HasSum    bool              `json:"has_sum"`
			}
			b, _ := json.Marshal(res.Result)
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatalf("state %s: %v", b, err)
			}
			var logged []uint16
			completed := []uint64{}
			for _, e := range st.Entries {
				switch {
				case e[0] <= v.Want.SlotN:
				case e[1] == 15 || e[1] == 17:
					logged = append(logged, uint16(e[1]))
				case e[1] != 1 || len(logged) == 0:
					completed = append(completed, e[0])
				}
			}
			want := v.Want.Completed
			if want == nil {
				want = []uint64{}
			}
			if fmt.Sprint(completed) != fmt.Sprint(want) || fmt.Sprint(logged) != fmt.Sprint(v.Want.Entries) {
				t.Fatalf("completed %v logged %v; want %v, %v (entries %v)", completed, logged, want, v.Want.Entries, st.Entries)
			}
			if got := st.Fl & (4 | 8 | 128); got != v.Want.Latched {
				t.Fatalf("latched %#x, want %#x", got, v.Want.Latched)
			}
			if st.HasSum != (v.Want.Summary != nil) {
				t.Fatalf("summary present %v, want %v", st.HasSum, v.Want.Summary != nil)
			}
			if s := v.Want.Summary; s != nil && (st.FirstN != s.FirstN || st.FirstType != s.FirstType || fmt.Sprint(st.Counts) != fmt.Sprint(s.Counts)) {
				t.Fatalf("summary first %d type %d counts %v; want %+v", st.FirstN, st.FirstType, st.Counts, *s)
			}
			if strings.Contains(string(b), "Traceback") {
				t.Fatal(string(b))
			}
		})
	}
}
