// Package mpharness drives the fieldseal MicroPython guard running in the real MicroPython
// WebAssembly interpreter (device/micropython/harness/harness.mjs under Node.js): one
// simulated device per process, with host folders as its external and internal storage,
// spoken to in JSON lines. Go cross-language tests, the agent's tests and
// `sim --micropython N` use it to put real MicroPython devices in front of Go code.
package mpharness

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Options say which device to start.
type Options struct {
	Ext      string // host folder holding the external storage (the application's files)
	Int      string // host folder holding the internal storage (bundle, log, state)
	Manifest string // the frozen manifest module, _fieldseal_manifest.py
	Now      int64  // device clock at first boot, unix seconds (default: host time)
	LogCap   int    // bytes of log for routine entries (default 12288)
	App      string // module to import after boot ("" = none)
	Node     string // node binary (default "node" on PATH)
	Guard    string // guard package folder (default device/micropython/fieldseal)
	Stderr   io.Writer
	Timeout  time.Duration // per step (default 60s): a step that takes longer kills the device
}

// Device is a running harness process. Step is safe for one goroutine at a time.
type Device struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	lines   chan []byte
	timeout time.Duration
	mu      sync.Mutex
	seq     int
	done    chan struct{}
}

// Dir is device/micropython, found from this source file.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), ".."))
}

// Start launches the harness. The device is powered off until the first {"cmd":"boot"}.
func Start(ctx context.Context, o Options) (*Device, error) {
	if o.Ext == "" || o.Int == "" || o.Manifest == "" {
		return nil, errors.New("mpharness: Ext, Int and Manifest are required")
	}
	node := o.Node
	if node == "" {
		node = "node"
	}
	args := []string{filepath.Join(Dir(), "harness", "harness.mjs"), "--ext", o.Ext, "--int", o.Int, "--manifest", o.Manifest}
	if o.Now != 0 {
		args = append(args, "--now", fmt.Sprint(o.Now))
	}
	if o.LogCap != 0 {
		args = append(args, "--log-cap", fmt.Sprint(o.LogCap))
	}
	if o.App != "" {
		args = append(args, "--app", o.App)
	}
	if o.Guard != "" {
		args = append(args, "--guard", o.Guard)
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Stderr = o.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &Device{cmd: cmd, in: in, lines: make(chan []byte, 1), timeout: o.Timeout, done: make(chan struct{})}
	if d.timeout == 0 {
		d.timeout = 60 * time.Second
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			d.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(d.lines)
	}()
	go func() { cmd.Wait(); close(d.done) }()
	return d, nil
}

// Cmd is one step of the JSON-lines protocol, e.g. Cmd{"cmd": "tick", "s": 3600}.
type Cmd map[string]any

// Resp is the harness's answer to a step. Fields not set by a command are zero.
type Resp struct {
	OK      bool            `json:"ok"`
	Error   string          `json:"error,omitempty"`
	Powered *bool           `json:"powered,omitempty"`
	Reports []string        `json:"reports,omitempty"` // base64 COSE_Mac0 reports emitted by tick
	Report  string          `json:"report,omitempty"`  // base64, from {"cmd":"report"}
	Result  any             `json:"result,omitempty"`  // ack/token/exec outcome
	Segment string          `json:"segment,omitempty"` // base64 CBOR wire.Segment, from {"cmd":"log"}
	Entries []Entry         `json:"entries,omitempty"`
	Import  *ImportResult   `json:"import,omitempty"`
	App     *ImportResult   `json:"app,omitempty"`
	Summary *Summary        `json:"summary,omitempty"`
	HW      *HW             `json:"hw,omitempty"`
	Raw     json.RawMessage `json:"-"`
}

// Entry is a log entry as the harness lists it (hex payload and tag, payload decoded).
type Entry struct {
	N       uint64         `json:"n"`
	T       uint64         `json:"t"`
	Type    uint16         `json:"type"`
	Payload string         `json:"payload"`
	Tag     string         `json:"tag"`
	Decoded map[string]any `json:"decoded"`
}

// ImportResult is the outcome of importing a module on the device.
type ImportResult struct {
	OK    bool   `json:"ok"`
	File  string `json:"file"`
	Value any    `json:"value"`
	Error string `json:"error"`
}

// Summary is the guard's state after a step.
type Summary struct {
	Dev             string     `json:"dev"`
	N               uint64     `json:"n"`
	Base            uint64     `json:"base"`
	Boot            uint32     `json:"boot"`
	RSeq            uint64     `json:"rseq"`
	Flags           uint32     `json:"flags"`
	Bad             [][]string `json:"bad"`
	Refused         []string   `json:"refused"`
	Dropped         int        `json:"dropped"`
	LogBytes        int        `json:"log_bytes"`
	ManifestVersion uint64     `json:"manifest_version"`
	ServiceUntil    int64      `json:"service_until"`
	Path            []string   `json:"path"`
}

// HW is the simulated hardware: clock, cover switch level, tamper latch.
type HW struct {
	Now   int64 `json:"now"`
	Cover bool  `json:"cover"`
	Latch bool  `json:"latch"`
}

// Bytes decodes a base64 field of a response (Report, Segment or one of Reports).
func Bytes(b64 string) []byte {
	b, _ := base64.StdEncoding.DecodeString(b64)
	return b
}

// ErrStep is returned (wrapped) when the harness answers ok=false.
var ErrStep = errors.New("step failed")

// Step sends one command and waits for its answer. A response with ok=false is returned
// together with an error wrapping ErrStep.
func (d *Device) Step(c Cmd) (*Resp, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	c["id"] = d.seq
	line, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if _, err := d.in.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("mpharness: write: %w", err)
	}
	select {
	case l, ok := <-d.lines:
		if !ok {
			return nil, errors.New("mpharness: harness exited")
		}
		var r Resp
		if err := json.Unmarshal(l, &r); err != nil {
			return nil, fmt.Errorf("mpharness: bad answer %q: %w", l, err)
		}
		r.Raw = l
		if !r.OK {
			return &r, fmt.Errorf("%w: %s: %s", ErrStep, c["cmd"], r.Error)
		}
		return &r, nil
	case <-time.After(d.timeout):
		d.cmd.Process.Kill()
		return nil, fmt.Errorf("mpharness: %s: no answer within %v (device hung; killed)", c["cmd"], d.timeout)
	}
}

// Close ends the harness (it writes internal storage back first) and waits for it.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.in.Close()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
	return nil
}

// Convenience wrappers for the common steps.

func (d *Device) Boot() (*Resp, error) { return d.Step(Cmd{"cmd": "boot"}) }
func (d *Device) Tick(s int) (*Resp, error) {
	return d.Step(Cmd{"cmd": "tick", "s": s})
}
func (d *Device) Cover(open bool) (*Resp, error) { return d.Step(Cmd{"cmd": "cover", "open": open}) }

// Report asks for a report now and returns the COSE_Mac0 bytes.
func (d *Device) Report() ([]byte, error) {
	r, err := d.Step(Cmd{"cmd": "report"})
	if err != nil {
		return nil, err
	}
	return Bytes(r.Report), nil
}

// Ack delivers a downlink ack; the result is "ok" or the rejection name.
func (d *Device) Ack(b []byte) (string, error) {
	r, err := d.Step(Cmd{"cmd": "ack", "b64": base64.StdEncoding.EncodeToString(b)})
	if err != nil {
		return "", err
	}
	return fmt.Sprint(r.Result), nil
}

// Token delivers a single-use command token; the result is "ok" or the rejection name.
func (d *Device) Token(b []byte) (string, error) {
	r, err := d.Step(Cmd{"cmd": "token", "b64": base64.StdEncoding.EncodeToString(b)})
	if err != nil {
		return "", err
	}
	return fmt.Sprint(r.Result), nil
}

// Log exports the unacknowledged log: the CBOR wire.Segment and the listed entries.
func (d *Device) Log() (*Resp, error) { return d.Step(Cmd{"cmd": "log"}) }

// Edit replaces a file on external storage (the attacker's hand; works powered or not).
func (d *Device) Edit(path string, data []byte) error {
	_, err := d.Step(Cmd{"cmd": "edit", "path": path, "b64": base64.StdEncoding.EncodeToString(data)})
	return err
}

// Restore puts back the file as it was when the harness started.
func (d *Device) Restore(path string) error {
	_, err := d.Step(Cmd{"cmd": "restore", "path": path})
	return err
}

// Import imports a module on the device and reads one attribute.
func (d *Device) Import(module, attr string) (*ImportResult, error) {
	r, err := d.Step(Cmd{"cmd": "import", "module": module, "attr": attr})
	if err != nil {
		return nil, err
	}
	return r.Import, nil
}
