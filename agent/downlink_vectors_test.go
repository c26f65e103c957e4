package agent

import (
	"errors"
	"testing"

	"github.com/fieldseal/fieldseal/internal/dlvectors"
	"github.com/fieldseal/fieldseal/wire"
)

// vectorDevice runs the agent's engine under the downlink behaviour vectors.
type vectorDevice struct {
	t   *testing.T
	d   *Device
	b   *wire.Bundle
	now uint64
}

func (v *vectorDevice) Report() *wire.Report {
	v.now += 60
	data, err := v.d.Report(v.now)
	if err != nil {
		v.t.Fatal(err)
	}
	m, err := wire.ParseReport(data)
	if err != nil {
		v.t.Fatal(err)
	}
	r, err := wire.OpenReport(m, v.b.UplinkKey)
	if err != nil {
		v.t.Fatal(err)
	}
	return r
}

func outcome(err error) string {
	switch {
	case err == nil, errors.Is(err, ErrTokenRefused):
		return "ok"
	case errors.Is(err, ErrStaleAck):
		return "stale"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrBadDownlink):
		return "bad-downlink"
	}
	return "error: " + err.Error()
}

func (v *vectorDevice) Ack(b []byte) string   { v.now++; return outcome(v.d.HandleAck(b, v.now)) }
func (v *vectorDevice) Token(b []byte) string { v.now++; return outcome(v.d.ApplyToken(b, v.now)) }
func (v *vectorDevice) Cover() {
	v.now++
	v.d.Cover(v.now, true, wire.CoverSourceIRQ)
	v.d.Cover(v.now, false, wire.CoverSourceIRQ)
}
func (v *vectorDevice) Pending() []wire.Entry { return v.d.Segment().Entries }
func (v *vectorDevice) InService() bool       { return v.d.Status().InService }

// The Go agent passes every downlink behaviour vector (testdata/vectors/downlink), as the
// MicroPython guard does (device/micropython/mpharness).
func TestDownlinkVectors(t *testing.T) {
	cases, err := dlvectors.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			d, _, _ := newDevice(t)
			dlvectors.Run(t, d.Bundle(), &vectorDevice{t: t, d: d, b: d.Bundle(), now: 1000}, c)
		})
	}
}

// S13: forged downlinks in bulk cannot fill the log: at most MaxBadDownlinks bad-downlink
// entries between two accepted acks, the rest counted (vector forged-downlinks-capped).
func TestThreatS13_ForgedDownlinkFloodCapped(t *testing.T) {
	d, _, _ := newDevice(t)
	dlvectors.Run(t, d.Bundle(), &vectorDevice{t: t, d: d, b: d.Bundle(), now: 1000}, dlvectors.Named(t, "forged-downlinks-capped"))
}

// S6: a token is spent once; until_rseq 0 is never valid; a token in a late ack is not
// applied; an expired one is refused even in a current ack (vectors).
func TestThreatS6_TokenRulesMatchGuard(t *testing.T) {
	for _, name := range []string{"until-rseq-zero-never-valid", "token-repeated-in-later-ack", "expired-or-revoked-token-in-late-ack", "standalone-token-single-use"} {
		t.Run(name, func(t *testing.T) {
			d, _, _ := newDevice(t)
			dlvectors.Run(t, d.Bundle(), &vectorDevice{t: t, d: d, b: d.Bundle(), now: 1000}, dlvectors.Named(t, name))
		})
	}
}
