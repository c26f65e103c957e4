package server_test

import (
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// D22, D26 at the server: the entries a device logs when recovery finds a copied-back or
// edited state slot (rollback-detected) or when it gives up a corrupt log (log-corrupt)
// are tamper-class, and the server makes the device tampered under their own names, with
// the entry in the evidence.
func TestThreatD22_RollbackEntryIsTamperReason(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		dev     string
		typ     uint16
		payload any
	}{
		{"meter-rb", wire.EntryRollbackDetected, &wire.RollbackPayload{What: "state slot at entry 3, but entries 4..6 in the log verify: completed them", SlotN: 3, LogN: 6}},
		{"meter-lc", wire.EntryLogCorrupt, &wire.LogCorruptPayload{What: "entry 2 of 5 missing", Lost: 4, BaseN: 1}},
	} {
		d := e.provision(c.dev, "watermeter")
		e.mustSend(d)
		d.log(c.typ, c.payload)
		e.mustSend(d)
		st := e.device(c.dev)
		if st.State != store.StateTampered || st.StateReason != wire.EntryName(c.typ) {
			t.Fatalf("%s after %s: %s (%s)", c.dev, wire.EntryName(c.typ), st.State, st.StateReason)
		}
		var out struct{ Events []httpapi.EventView }
		e.api("GET", "/api/v1/devices/"+c.dev+"/events?tamper=true", e.s.AdminToken(), nil, &out)
		if len(out.Events) != 1 || out.Events[0].TypeName != wire.EntryName(c.typ) || !strings.Contains(string(out.Events[0].Decoded), "entr") {
			t.Fatalf("%s tamper events %+v", c.dev, out.Events)
		}
	}
}
