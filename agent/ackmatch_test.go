package agent

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/wire"
)

// S11 (device side): on MQTT the device takes only the ack whose acked rseq answers the
// report it just sent, never "the first message on the downlink topic". Through a real
// Mosquitto, each report's answer is preceded by a forged ack and by the authentic ack of
// the previous report: the device logs the forged ones (bad-downlink), ignores the stale
// one and is acknowledged by the right one.
func TestThreatS11_AckMatchedToItsReport(t *testing.T) {
	addr := testenv.Service(t, "FIELDSEAL_TEST_MQTT", "127.0.0.1:1883", "MQTT broker")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, priv := newBundle(t, fmt.Sprintf("s11-%d", time.Now().UnixNano()))
	d, err := New(Config{Bundle: b, Manifest: wire.ManifestRef{Product: "watermeter", Version: 1, Root: make([]byte, 32)},
		Chain: fschain.NewMemStorage(), Now: 1000})
	if err != nil {
		t.Fatal(err)
	}
	srv := newMini(b, priv)
	up, down := wire.DefaultTopics.Up(b.Device), wire.DefaultTopics.Down(b.Device)
	reports := make(chan []byte, 4)
	sc, err := mqttDial(ctx, mqttParams{addr: addr, clientID: b.Device + "/server", user: "server", pass: "x", keepAlive: time.Minute},
		func(topic string, p []byte) { reports <- append([]byte(nil), p...) })
	if err != nil {
		t.Fatal(err)
	}
	defer sc.close()
	if err := sc.subscribe(ctx, up); err != nil {
		t.Fatal(err)
	}
	tr, err := Dial(ctx, "mqtt://"+addr, b, DialOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	other := make([]byte, 32)
	rand.Read(other)
	var previous []byte // the authentic ack of the previous report
	for round := 1; round <= 3; round++ {
		now := uint64(1000 + 60*round)
		d.Cover(now, round%2 == 1, wire.CoverSourceIRQ) // something to prune each round
		rep, err := d.Report(now)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		var first []byte
		go func() {
			var err error
			first, err = tr.Send(ctx, rep)
			if err == nil {
				err = takeAnswer(ctx, d, tr, first, now)
			}
			errc <- err
		}()
		var got []byte
		select {
		case got = <-reports:
		case <-ctx.Done():
			t.Fatal("no report through the broker")
		}
		genuine, r, verr := srv.handle(t, got)
		if verr != nil {
			t.Fatal(verr)
		}
		forged, _ := wire.SealAck(&wire.Ack{Dev: b.Device, Epoch: b.Epoch, AckedRSeq: r.RSeq, Anchor: wire.Anchor{N: r.Log.N, Head: r.Log.Head}}, other)
		if previous != nil {
			if err := sc.publish(ctx, down, previous); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range [][]byte{forged, genuine} {
			if err := sc.publish(ctx, down, m); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-errc; err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if st := d.Status(); st.AckedRSeq != r.RSeq {
			t.Fatalf("round %d: acked %d, want %d", round, st.AckedRSeq, r.RSeq)
		}
		seg := d.Segment()
		if seg.First != r.Log.N+1 {
			t.Fatalf("round %d: pruned to %d, want %d", round, seg.First-1, r.Log.N)
		}
		bad := 0
		for _, e := range seg.Entries {
			var p wire.BadDownlinkPayload
			if e.Type == wire.EntryBadDownlink && wire.Unmarshal(e.Payload, &p) == nil && p.Why == WhyBadMAC {
				bad++
			}
		}
		if bad != 1 {
			t.Fatalf("round %d: %d bad-mac entries after the ack, want 1 (the forged ack; the stale one logs nothing)", round, bad)
		}
		previous = genuine
	}
}
