// Package dlvectors runs the downlink behaviour vectors of testdata/vectors/downlink
// against a device implementation: the Go agent and the MicroPython guard both pass them
// (docs/PROTOCOL.md, "Downlink rules").
package dlvectors

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// Device is what the runner needs from an implementation under test.
type Device interface {
	// Report builds the next report and returns it opened.
	Report() *wire.Report
	// Ack and Token deliver a downlink and classify the outcome: "ok", "stale",
	// "rejected" or "bad-downlink".
	Ack(b []byte) string
	Token(b []byte) string
	// Cover opens and closes the enclosure (adds entries).
	Cover()
	// Pending is the unacknowledged part of the log.
	Pending() []wire.Entry
	// InService says whether a service window is open.
	InService() bool
}

// Case is one vector: a sequence of steps.
type Case struct {
	Name   string `json:"name"`
	Threat string `json:"threat"`
	Doc    string `json:"doc"`
	Steps  []Step `json:"steps"`
}

// Step is one downlink (or device action) and what must follow.
type Step struct {
	Do     string     `json:"do"`
	Note   string     `json:"note,omitempty"`
	Ack    *AckSpec   `json:"ack,omitempty"`
	Token  *TokenSpec `json:"token,omitempty"`
	Step   int        `json:"step,omitempty"`
	Repeat int        `json:"repeat,omitempty"`
	Expect *Expect    `json:"expect,omitempty"`
}

// AckSpec describes an ack (README.md).
type AckSpec struct {
	Acked   string      `json:"acked"`
	Anchor  string      `json:"anchor"`
	Key     string      `json:"key,omitempty"`
	Flip    bool        `json:"flip,omitempty"`
	Garbage bool        `json:"garbage,omitempty"`
	Dev     string      `json:"dev,omitempty"`
	Epoch   string      `json:"epoch,omitempty"`
	Nonce   string      `json:"nonce,omitempty"`
	Reject  string      `json:"reject,omitempty"`
	Tokens  []TokenSpec `json:"tokens,omitempty"`
}

// TokenSpec describes a token (README.md).
type TokenSpec struct {
	ID        string `json:"id"`
	Action    string `json:"action"`
	UntilRSeq string `json:"until_rseq,omitempty"`
	Expires   string `json:"expires,omitempty"`
	Window    uint32 `json:"window,omitempty"`
	Key       string `json:"key,omitempty"`
}

// Expect is what a step must show.
type Expect struct {
	Result  string  `json:"result"`
	Entries [][]any `json:"entries"`
	Pruned  *bool   `json:"pruned,omitempty"`
	Service *bool   `json:"service,omitempty"`
}

// Path is testdata/vectors/downlink/vectors.json, found from this source file.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "vectors", "downlink", "vectors.json")
}

// Load reads the vectors.
func Load() ([]Case, error) {
	raw, err := os.ReadFile(Path())
	if err != nil {
		return nil, err
	}
	var f struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
		Doc     string `json:"doc"`
		Cases   []Case `json:"cases"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields() // a misspelt field would silently test nothing
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", Path(), err)
	}
	if len(f.Cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", Path())
	}
	return f.Cases, nil
}

// runner holds what a case's steps refer to.
type runner struct {
	t       testing.TB
	b       *wire.Bundle
	dev     Device
	reports []*wire.Report
	ids     map[string][]byte
	sent    [][]byte // bytes delivered by each step (nil for non-downlinks)
	kinds   []string // what each step delivered: "ack", "token" or ""
}

// Run plays one case against a fresh device made for bundle b.
func Run(t testing.TB, b *wire.Bundle, dev Device, c Case) {
	t.Helper()
	r := &runner{t: t, b: b, dev: dev, ids: map[string][]byte{}}
	for i, s := range c.Steps {
		r.step(i, s)
	}
}

func (r *runner) step(i int, s Step) {
	t := r.t
	t.Helper()
	what := fmt.Sprintf("step %d (%s %s)", i, s.Do, s.Note)
	before := r.dev.Pending()
	var firstBefore uint64
	if len(before) > 0 {
		firstBefore = before[0].N
	}
	nBefore := r.headN()
	var results []string
	var delivered []byte
	repeat := max(s.Repeat, 1)
	switch s.Do {
	case "report":
		r.reports = append(r.reports, r.dev.Report())
	case "cover":
		r.dev.Cover()
	case "ack", "token", "resend":
		for k := 0; k < repeat; k++ {
			var msg []byte
			isAck := true
			switch s.Do {
			case "ack":
				msg = r.ack(s.Ack)
			case "token":
				msg, isAck = r.token(s.Token), false
			case "resend":
				msg = r.sent[s.Step]
				isAck = r.isAck(s.Step)
			}
			delivered = msg
			if isAck {
				results = append(results, r.dev.Ack(msg))
			} else {
				results = append(results, r.dev.Token(msg))
			}
		}
	default:
		t.Fatalf("%s: unknown step", what)
	}
	r.sent = append(r.sent, delivered)
	kind := s.Do
	if s.Do == "resend" {
		kind = r.kinds[s.Step]
	}
	r.kinds = append(r.kinds, kind)
	e := s.Expect
	if e == nil {
		return
	}
	for k, got := range results {
		if got != e.Result {
			t.Fatalf("%s, delivery %d: result %q, want %q", what, k+1, got, e.Result)
		}
	}
	after := r.dev.Pending()
	var added []wire.Entry
	for _, en := range after {
		if en.N > nBefore {
			added = append(added, en)
		}
	}
	want := expand(e.Entries)
	if len(added) != len(want) {
		t.Fatalf("%s: added entries %s, want %v", what, describe(added), want)
	}
	for k, en := range added {
		if wire.EntryName(en.Type) != want[k][0] {
			t.Fatalf("%s: added entries %s, want %v", what, describe(added), want)
		}
		if len(want[k]) > 1 {
			if why := badWhy(en); why != want[k][1] {
				t.Fatalf("%s: entry %d why %q, want %q", what, en.N, why, want[k][1])
			}
		}
	}
	if e.Pruned != nil {
		var firstAfter uint64
		if len(after) > 0 {
			firstAfter = after[0].N
		}
		anchorN := r.reports[len(r.reports)-1].Log.N
		if *e.Pruned {
			if len(after) > 0 && firstAfter != anchorN+1 {
				t.Fatalf("%s: oldest pending entry %d, want %d (pruned to the anchor)", what, firstAfter, anchorN+1)
			}
		} else if len(before) > 0 && firstAfter != firstBefore {
			t.Fatalf("%s: oldest pending entry %d, was %d (nothing may be pruned)", what, firstAfter, firstBefore)
		}
	}
	if e.Service != nil && r.dev.InService() != *e.Service {
		t.Fatalf("%s: in service %v, want %v", what, !*e.Service, *e.Service)
	}
}

// headN is the device's current log head n: the newest pending entry, else the last report's n.
func (r *runner) headN() uint64 {
	p := r.dev.Pending()
	if len(p) > 0 {
		return p[len(p)-1].N
	}
	n := uint64(0)
	for _, rep := range r.reports {
		n = max(n, rep.Log.N)
	}
	return n
}

func (r *runner) isAck(step int) bool {
	return r.kinds[step] != "token"
}

// badWhy is a bad-downlink entry's why ("" when it does not decode).
func badWhy(e wire.Entry) string {
	v, err := wire.DecodePayload(e.Type, e.Payload)
	if p, ok := v.(*wire.BadDownlinkPayload); ok && err == nil {
		return p.Why
	}
	return ""
}

func (r *runner) key(name string) []byte {
	switch name {
	case "", "T":
		return r.b.DownlinkKey
	case "R":
		return r.b.UplinkKey
	case "other":
		k := make([]byte, 32)
		rand.Read(k)
		return k
	}
	r.t.Fatalf("unknown key %q", name)
	return nil
}

func (r *runner) last() *wire.Report {
	if len(r.reports) == 0 {
		r.t.Fatal("an ack before any report")
	}
	return r.reports[len(r.reports)-1]
}

func (r *runner) ack(s *AckSpec) []byte {
	t := r.t
	if s.Garbage {
		return []byte{0xd1, 0x84, 0x01}
	}
	rep := r.last()
	a := &wire.Ack{Dev: r.b.Device, Epoch: r.b.Epoch, Nonce: []byte(s.Nonce), Reject: s.Reject}
	switch s.Acked {
	case "last":
		a.AckedRSeq = rep.RSeq
	case "previous":
		a.AckedRSeq = rep.RSeq - 1
	case "next":
		a.AckedRSeq = rep.RSeq + 1
	case "zero":
	default:
		t.Fatalf("acked %q", s.Acked)
	}
	switch s.Anchor {
	case "report":
		a.Anchor = wire.Anchor{N: rep.Log.N, Head: rep.Log.Head}
	case "wrong-head":
		a.Anchor = wire.Anchor{N: rep.Log.N, Head: make([]byte, 32)}
	case "ahead":
		a.Anchor = wire.Anchor{N: rep.Log.N + 1000, Head: rep.Log.Head}
	default:
		t.Fatalf("anchor %q", s.Anchor)
	}
	if s.Dev == "other" {
		a.Dev = r.b.Device + "x"
	}
	if s.Epoch == "next" {
		a.Epoch++
	}
	for _, ts := range s.Tokens {
		a.Commands = append(a.Commands, r.token(&ts))
	}
	if len(a.Nonce) == 0 {
		a.Nonce = nil
	}
	b, err := wire.SealAck(a, r.key(s.Key))
	if err != nil {
		t.Fatal(err)
	}
	if s.Flip {
		b[len(b)-1] ^= 1
	}
	return b
}

func (r *runner) token(s *TokenSpec) []byte {
	id, ok := r.ids[s.ID]
	if !ok {
		id = make([]byte, 16)
		rand.Read(id)
		r.ids[s.ID] = id
	}
	var rseq uint64
	if len(r.reports) > 0 {
		rseq = r.last().RSeq
	}
	tok := &wire.Token{Dev: r.b.Device, Epoch: r.b.Epoch, ID: id, Action: s.Action, Expires: 4102444800,
		Args: wire.TokenArgs{Window: s.Window}}
	switch s.UntilRSeq {
	case "", "rseq+10":
		tok.UntilRSeq = rseq + 10
	case "rseq-1":
		tok.UntilRSeq = rseq - 1
	case "zero":
	default:
		r.t.Fatalf("until_rseq %q", s.UntilRSeq)
	}
	switch s.Expires {
	case "", "future":
	case "past":
		tok.Expires = 1000
	default:
		r.t.Fatalf("expires %q", s.Expires)
	}
	b, err := wire.SealToken(tok, r.key(s.Key))
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// expand turns [type, why, k] into k entries [type, why].
func expand(in [][]any) [][]string {
	var out [][]string
	for _, e := range in {
		k := 1
		if len(e) == 3 {
			k = int(e[2].(float64))
		}
		var s []string
		for _, v := range e[:min(len(e), 2)] {
			s = append(s, v.(string))
		}
		for ; k > 0; k-- {
			out = append(out, s)
		}
	}
	return out
}

func describe(es []wire.Entry) string {
	var b bytes.Buffer
	b.WriteString("[")
	for i, e := range es {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(wire.EntryName(e.Type))
		if e.Type == wire.EntryBadDownlink {
			fmt.Fprintf(&b, "(%s)", badWhy(e))
		}
	}
	b.WriteString("]")
	return b.String()
}

// Named returns the case called name (for tests named after a THREAT_MODEL row).
func Named(t testing.TB, name string) Case {
	t.Helper()
	cases, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no downlink vector %q", name)
	return Case{}
}
