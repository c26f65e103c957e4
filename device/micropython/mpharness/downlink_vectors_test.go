package mpharness

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/dlvectors"
	"github.com/fieldseal/fieldseal/wire"
)

// guardVectorDevice runs the MicroPython guard under the downlink behaviour vectors.
type guardVectorDevice struct{ r *rig }

func (g guardVectorDevice) Report() *wire.Report { return g.r.report() }

func (g guardVectorDevice) Ack(b []byte) string {
	res := g.r.ack(b)
	switch {
	case res == "ok", strings.HasPrefix(res, "ok; token "):
		return "ok"
	case res == "stale":
		return "stale"
	case strings.HasPrefix(res, "rejected:"):
		return "rejected"
	}
	return "bad-downlink"
}

func (g guardVectorDevice) Token(b []byte) string {
	if res := g.r.token(b); res != "ok" {
		return "bad-downlink"
	}
	return "ok"
}

func (g guardVectorDevice) Cover() {
	g.r.step(Cmd{"cmd": "cover", "open": true})
	g.r.step(Cmd{"cmd": "cover", "open": false})
}

func (g guardVectorDevice) Pending() []wire.Entry {
	resp := g.r.step(Cmd{"cmd": "log"})
	raw, err := base64.StdEncoding.DecodeString(resp.Segment)
	if err != nil {
		g.r.t.Fatal(err)
	}
	var s wire.Segment
	if err := wire.Unmarshal(raw, &s); err != nil {
		g.r.t.Fatalf("segment: %v", err)
	}
	return s.Entries
}

func (g guardVectorDevice) InService() bool {
	return g.r.step(Cmd{"cmd": "state"}).Summary.Flags&wire.StateServiceMode != 0
}

// The guard, under the real MicroPython interpreter, passes every downlink behaviour
// vector (testdata/vectors/downlink), as the Go agent does (agent.TestDownlinkVectors).
func TestDownlinkVectors(t *testing.T) {
	cases, err := dlvectors.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := newRig(t, nil, AppOptions{})
			r.boot()
			dlvectors.Run(t, &r.bundle, guardVectorDevice{r}, c)
		})
	}
}

// S13: forged downlinks in bulk cannot fill the guard's log: at most 16 bad-downlink
// entries between two accepted acks (vector forged-downlinks-capped, shared with the agent).
func TestThreatS13_ForgedDownlinkFloodCapped(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	dlvectors.Run(t, &r.bundle, guardVectorDevice{r}, dlvectors.Named(t, "forged-downlinks-capped"))
}

// S11 (device side): the guard takes only an ack answering the last report it sent; an
// authentic ack to an earlier report is ignored whole (vector older-ack-ignored).
func TestThreatS11_OlderAckIgnored(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	dlvectors.Run(t, &r.bundle, guardVectorDevice{r}, dlvectors.Named(t, "older-ack-ignored"))
}
