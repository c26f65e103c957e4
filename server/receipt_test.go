package server_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/wire"
)

// Receipts are refreshed at most every receipt interval unless tamper evidence arrives (or
// a new boot): in between, an ack whose anchor moved carries no receipt, and the device's
// latest receipt still verifies against its log, covering an earlier entry.
func TestReceiptInterval(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.ReceiptInterval = time.Hour })
	d := e.provision("meter-1", "watermeter")
	fresh := func(a *wire.Ack, want bool, what string) {
		t.Helper()
		if !want {
			if len(a.Receipt) != 0 {
				t.Fatalf("%s: a receipt, want none", what)
			}
			return
		}
		rc, err := wire.OpenReceipt(a.Receipt, e.s.PublicKey())
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if rc.N != a.Anchor.N || !bytes.Equal(rc.Head, a.Anchor.Head) {
			t.Fatalf("%s: receipt n %d, anchor n %d", what, rc.N, a.Anchor.N)
		}
		if _, err := fschain.VerifyReceipt(a.Receipt, e.s.PublicKey(), "meter-1", 1); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	d.log(wire.EntryBoot, &wire.BootPayload{BootCount: 1, Result: "ok"})
	fresh(e.mustSend(d), true, "first report")
	d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
	fresh(e.mustSend(d), false, "routine entry within the interval")
	fresh(e.mustSend(d), false, "no new entry") // anchor unchanged, last receipt is older

	d.log(wire.EntryMagnet, &wire.MagnetPayload{})
	fresh(e.mustSend(d), true, "tamper-class entry")
	fresh(e.mustSend(d), true, "anchor unchanged: the stored receipt matches it")

	d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
	e.clock.Add(59 * time.Minute)
	fresh(e.mustSend(d), false, "59 minutes later")
	d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
	e.clock.Add(2 * time.Minute)
	fresh(e.mustSend(d), true, "receipt older than the interval")

	d.boot++
	d.log(wire.EntryBoot, &wire.BootPayload{BootCount: 2, Result: "ok"})
	fresh(e.mustSend(d), true, "first report of a boot")
	d.log(wire.EntryCheckOK, &wire.CheckOKPayload{Files: 1})
	fresh(e.mustSend(d), false, "second report of the boot")
}
