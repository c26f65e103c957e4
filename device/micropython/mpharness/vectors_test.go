package mpharness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/testenv"
)

// runPy runs a script of device/micropython/harness in the MicroPython interpreter with
// data copied to /data, and decodes its JSON-line output.
func runPy(t *testing.T, script, data string) []map[string]any {
	t.Helper()
	return runPyTB(t, script, data)
}

func runPyTB(t testing.TB, script, data string) []map[string]any {
	t.Helper()
	node, _ := testenv.Node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(Dir(), "harness", "run.mjs"), filepath.Join(Dir(), "harness", script), "--data", data)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	var res []map[string]any
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: bad line %q", script, sc.Text())
		}
		res = append(res, m)
	}
	return res
}

// The guard's Python FS-chain passes every shared vector of testdata/vectors/fschain:
// chain vectors (tags, heads, keys, seals, records, segment CBOR byte for byte) and verify
// vectors (run through a Python port of the verifier on the guard's primitives).
func TestFSChainVectorsInMicroPython(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "testdata", "vectors", "fschain")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	res := runPy(t, "vectors.py", dir)
	if len(res) != len(files) || len(res) == 0 {
		t.Fatalf("%d results for %d vectors", len(res), len(files))
	}
	for _, r := range res {
		if r["ok"] != true {
			t.Errorf("%s: %s", r["file"], r["why"])
		}
	}
}

// The guard's CBOR and COSE_Mac0 reproduce Go's wire vectors: same report bytes, Go's
// acks and tokens open under T, forged ones are refused as bad-mac; and its topic-root
// rule is wire.ValidTopicRoot on every case of topic-roots.json.
func TestWireVectorsInMicroPython(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "testdata", "vectors", "wire")
	res := runPy(t, "wirevectors.py", dir)
	if len(res) == 0 {
		t.Fatal("no results")
	}
	var roots []any
	raw, _ := os.ReadFile(filepath.Join(dir, "topic-roots.json"))
	if err := json.Unmarshal(raw, &roots); err != nil || len(roots) == 0 {
		t.Fatalf("topic-roots.json: %v", err)
	}
	n := 0
	for _, r := range res {
		if r["ok"] != true {
			t.Errorf("%s: %s", r["desc"], r["why"])
		}
		if d, _ := r["desc"].(string); strings.HasPrefix(d, "topic root: ") {
			n++
		}
	}
	if n != len(roots) {
		t.Errorf("%d topic-root results for %d vectors", n, len(roots))
	}
}

// State slots on raw flash (RawSlotStore, the esp32 "fsstate" partition or a dedicated
// sector): no earlier chain key survives anywhere on the device or in the log, the state
// reloads, and a power cut at every block erase/write of an append leaves a verifying log.
func TestRawSlotsForwardSecureAndCrashSafe(t *testing.T) {
	res := runPy(t, "rawslots.py", t.TempDir())
	if len(res) != 1 {
		t.Fatalf("results %v", res)
	}
	r := res[0]
	if r["old_keys_found"] != float64(0) || r["current_key_found"] != true || r["reload_n"] != float64(20) || r["verifies"] != true {
		t.Fatalf("rawslots: %v", r)
	}
	if r["cut_cases"].(float64) < 4 || len(r["cut_failures"].([]any)) != 0 {
		t.Fatalf("power cuts: %v", r)
	}
}

// The guard's storage code passes the shared storage vectors of
// testdata/vectors/fschain/storage: the device-state slot decodes, re-encodes byte for byte
// and an edited one fails its tag (D26); recovery completes and flags rollbacks as Go's
// fschain.Open does (D22).
func TestThreatD26_StorageVectorsInMicroPython(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "testdata", "vectors", "fschain", "storage")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	res := runPy(t, "storagevec.py", dir)
	if len(res) != len(files) || len(res) < 5 {
		t.Fatalf("%d results for %d vectors", len(res), len(files))
	}
	for _, r := range res {
		if r["ok"] != true {
			t.Errorf("%s: %s", r["file"], r["why"])
		}
	}
}

// The guard's LPWAN code (fieldseal/lpwan.py) reproduces Go's LPWAN vectors byte for byte
// (testdata/vectors/lpwan): status and entry frames, acks and tokens, altered frames refused.
func TestLPWANVectorsInMicroPython(t *testing.T) {
	res := runPy(t, "lpvectors.py", filepath.Join(testenv.RepoRoot(), "testdata", "vectors", "lpwan"))
	if len(res) < 6 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		if r["ok"] != true {
			t.Errorf("%s: %s", r["name"], r["why"])
		}
	}
}
