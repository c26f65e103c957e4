package agent

import (
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// A backlog too big for one message goes out as chunks of its oldest entries, each report
// within the 16 KiB limit; Behind asks for the next one until the last chunk, which carries
// the rest and is verified in full.
func TestReportBacklogInChunks(t *testing.T) {
	d, s, _ := newDevice(t)
	now := uint64(2000)
	for i := 0; i < 2000; i++ {
		d.SetReading(uint64(i), 0)
		if err := d.Register(now); err != nil {
			t.Fatal(err)
		}
		if i == 1000 {
			if err := d.Cover(now, true, wire.CoverSourceIRQ); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := d.Segment().N
	chunks := 0
	for {
		rep, err := d.Report(now)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep) > wire.MaxMessageSize {
			t.Fatalf("report of %d bytes", len(rep))
		}
		chunks++
		behind := d.Behind()
		ack, r, verr := s.handle(t, rep)
		if verr != nil {
			t.Fatalf("chunk %d (entries %d..): %v", chunks, r.Log.First, verr)
		}
		if err := d.HandleAck(ack, now); err != nil {
			t.Fatalf("chunk %d: %v", chunks, err)
		}
		if !behind {
			break
		}
		if chunks > 100 {
			t.Fatal("no end to the chunks")
		}
	}
	if chunks < 3 {
		t.Fatalf("%d reports for a 2000-entry backlog: it was not chunked", chunks)
	}
	if s.anchor.N != n || len(d.Segment().Entries) != 0 {
		t.Fatalf("server anchor %d, device n %d, %d entries left", s.anchor.N, n, len(d.Segment().Entries))
	}
	t.Logf("2000 register entries and a cover-open: %d reports", chunks)
}
