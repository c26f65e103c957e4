package server_test

import (
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// D24 at the server: a repeat entry (cover openings counted by the guard instead of logged
// one by one) makes the device tampered under the repeated kind's name, and the count is in
// the decoded tamper event.
func TestThreatD24_RepeatEntryIsTamper(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-flood", "watermeter")
	e.mustSend(d)
	d.log(wire.EntryRepeat, &wire.RepeatPayload{Type: wire.EntryCoverOpen, Count: 9992, First: 1767225600, Last: 1767229200})
	e.mustSend(d)
	st := e.device("meter-flood")
	if st.State != store.StateTampered || st.StateReason != "cover-open" {
		t.Fatalf("after a repeat entry: %s (%s)", st.State, st.StateReason)
	}
	var out struct{ Events []httpapi.EventView }
	e.api("GET", "/api/v1/devices/meter-flood/events?tamper=true", e.s.AdminToken(), nil, &out)
	if len(out.Events) != 1 || out.Events[0].TypeName != "repeat" || !strings.Contains(string(out.Events[0].Decoded), "9992") {
		t.Fatalf("tamper events %+v", out.Events)
	}
}
