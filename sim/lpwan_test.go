package sim

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/wire"
)

// lpTown builds a town of n meters with district 1 on the LPWAN profile, without a server:
// its meters are provisioned with local keys and never dialled.
func lpTown(t *testing.T, n int) *Town {
	t.Helper()
	key := bytes.Repeat([]byte{7}, 32)
	tw, err := New(context.Background(), Config{Meters: n, Seed: 1, Clock: NewClock(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), 1),
		LPWANDistrict: 1, HTTPEvery: 10,
		Provision: func(_ context.Context, id string) (*wire.Bundle, error) {
			return &wire.Bundle{Device: id, Epoch: 1, Product: "watermeter", ChainKey: key, UplinkKey: key, DownlinkKey: key, ServerPub: key}, nil
		},
		Dial:      func(context.Context, *wire.Bundle, bool) (agent.Transport, error) { return nil, nil },
		LPWANDial: func(context.Context, *wire.Bundle) (LPLink, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return tw
}

// The LPWAN district is the households of district 1, known before the town exists (a
// network server is configured with their DevEUIs first); the replayed and truncated
// reports, which need a COSE report, land elsewhere; other attacks may land there. A town
// of one district has none: those two attacks need a meter on the full protocol.
func TestLPWANDistrict(t *testing.T) {
	tw := lpTown(t, 200)
	want := map[string]bool{}
	for _, id := range (Config{Meters: 200, LPWANDistrict: 1}).LPWANMeters() {
		want[id] = true
	}
	lp := 0
	for _, m := range tw.Meters {
		if m.LPWAN != want[m.ID] || (m.LPWAN && (m.HTTP || m.Inlet || m.District != 1)) {
			t.Errorf("%s: lpwan %v http %v inlet %v district %d", m.ID, m.LPWAN, m.HTTP, m.Inlet, m.District)
		}
		if m.LPWAN {
			lp++
		}
	}
	if lp != 100 || len(want) != 100 {
		t.Fatalf("%d LPWAN meters, %d listed before", lp, len(want))
	}
	onLP := 0
	for _, s := range tw.Scenarios() {
		m := tw.Meter(s.Device)
		if fullProtocol[s.Name] && m.LPWAN {
			t.Errorf("%s on the LPWAN meter %s", s.Name, s.Device)
		}
		if m.LPWAN && s.ExpectAlarm {
			onLP++
		}
	}
	if onLP == 0 || len(tw.Scenarios()) != len(Names()) {
		t.Errorf("%d of %d scenarios placed, %d attacks on LPWAN meters", len(tw.Scenarios()), len(Names()), onLP)
	}
	if ids := (Config{Meters: 100, LPWANDistrict: 1}).LPWANMeters(); ids != nil {
		t.Errorf("a one-district town lists LPWAN meters: %v", ids[:3])
	}
	for _, m := range lpTown(t, 100).Meters {
		if m.LPWAN {
			t.Fatalf("%s on LPWAN in a one-district town", m.ID)
		}
	}
}
