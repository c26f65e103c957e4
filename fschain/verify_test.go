package fschain

import (
	"errors"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

func TestVerifyEdgeCases(t *testing.T) {
	w, _ := newTestWriter(t)
	appendN(t, w, 8)
	honest := w.Segment()
	srv := newServer()
	if err := srv.verify(cloneSeg(honest)); err != nil {
		t.Fatal(err)
	}
	a5 := Anchor{Dev: testDev, Epoch: 1, N: 5, Head: srv.heads[5], NextKey: KeyAt(testK1(), 6)}
	a0 := NewAnchor(testDev, 1, testK1())

	// Resent entries cannot be checked without headAt beyond genesis; they are ignored,
	// never returned as new.
	seg := cloneSeg(honest)
	seg.First, seg.Entries = 3, seg.Entries[2:]
	seg.Entries[0].T++ // entry 3 altered, but unverifiable without stored heads
	got, fresh, err := Verify(a5, seg, nil)
	if err != nil || got.N != 8 || len(fresh) != 3 || fresh[0].N != 6 {
		t.Fatalf("resend without headAt: %v %d %d", err, got.N, len(fresh))
	}
	// With headAt the same change is a fork.
	_, _, err = Verify(a5, seg, headsOf(srv.heads))
	wantVerifyErr(t, err, NameFork, 3)

	cases := []struct {
		name string
		mut  func(s *wire.Segment)
		want string
		seq  uint64
	}{
		{"first 0", func(s *wire.Segment) { s.First = 0 }, NameReorder, 0},
		{"short tag", func(s *wire.Segment) { s.Entries[6].Tag = s.Entries[6].Tag[:15] }, NameForgedEntry, 7},
		{"oversize payload", func(s *wire.Segment) { s.Entries[2].Payload = make([]byte, wire.MaxPayload+1) }, NameForgedEntry, 3},
		{"claims fewer", func(s *wire.Segment) { s.N = 7 }, NameHeadMismatch, 7},
		{"claims more", func(s *wire.Segment) { s.N = 9 }, NameGap, 9},
		{"short head", func(s *wire.Segment) { s.Head = s.Head[:31] }, NameHeadMismatch, 8},
		{"no seal", func(s *wire.Segment) { s.Seal = nil }, NameBadSeal, 8},
		{"entry renumbered", func(s *wire.Segment) { s.Entries[3].N = 40 }, NameGap, 4},
		{"last dropped", func(s *wire.Segment) { s.Entries = s.Entries[:7] }, NameGap, 8},
		{"middle dropped, renumbered", func(s *wire.Segment) {
			s.Entries = append(s.Entries[:3], s.Entries[4:]...)
			for i := range s.Entries {
				s.Entries[i].N = uint64(i + 1)
			}
			s.N = 7
		}, NameForgedEntry, 4},
	}
	for _, c := range cases {
		s := cloneSeg(honest)
		c.mut(&s)
		_, _, err := Verify(a0, s, nil)
		ve, ok := err.(*VerifyError)
		if !ok || ve.Name != c.want || ve.Seq != c.seq {
			t.Errorf("%s: got %v, want %s at %d", c.name, err, c.want, c.seq)
		}
	}

	// errors.Is by name, and a readable message.
	s := cloneSeg(honest)
	s.Seal[0] ^= 1
	_, _, err = Verify(a0, s, nil)
	if !errors.Is(err, ErrBadSeal) || errors.Is(err, ErrFork) || !strings.HasPrefix(err.Error(), "bad-seal at entry 8: ") {
		t.Fatalf("error %v", err)
	}
	// VerifyHeads ignores tags and seal but not the head chain.
	if _, _, err := VerifyHeads(a0, s, nil); err != nil {
		t.Fatal(err)
	}
	s.Entries[0].Tag[0] ^= 1
	if _, _, err := VerifyHeads(a0, s, nil); !errors.Is(err, ErrHeadMismatch) {
		t.Fatalf("heads only: %v", err)
	}
}

func TestSummary(t *testing.T) {
	for typ := uint16(1); typ <= 16; typ++ {
		b := wire.MustMarshal(wire.NewPayload(typ))
		if s := Summary(wire.Entry{Type: typ, Payload: b}); !strings.HasPrefix(s, wire.EntryName(typ)) {
			t.Fatalf("summary %q", s)
		}
	}
	e := wire.Entry{Type: wire.EntryCheckFail, Payload: wire.MustMarshal(&wire.CheckFailPayload{Bad: []wire.BadFile{{Path: "a.mpy", Kind: "missing"}}})}
	if s := Summary(e); s != "check-fail: a.mpy missing" {
		t.Fatalf("summary %q", s)
	}
	if s := Summary(wire.Entry{Type: wire.EntryMagnet, Payload: []byte{0xff}}); !strings.Contains(s, "undecodable") {
		t.Fatalf("summary %q", s)
	}
}

func TestVerifyPrefix(t *testing.T) {
	w, _ := newTestWriter(t)
	appendN(t, w, 9)
	full := w.Segment()
	a := NewAnchor(testDev, 1, testK1())
	// Three chunks of three entries, each claiming n = 9.
	for i := 0; i < 3; i++ {
		seg := cloneSeg(full)
		seg.First, seg.Entries = uint64(3*i+1), seg.Entries[3*i:3*i+3]
		if i < 2 {
			if _, _, err := Verify(a, seg, nil); !errors.Is(err, ErrGap) {
				t.Fatalf("Verify took a prefix: %v", err)
			}
		}
		next, fresh, err := VerifyPrefix(a, seg, nil)
		if err != nil || len(fresh) != 3 || next.N != uint64(3*i+3) {
			t.Fatalf("chunk %d: %v", i, err)
		}
		a = next
	}
	if n, h, _ := w.State(); a.N != n || a.Head != h {
		t.Fatal("prefixes did not reach the device's head")
	}
	// A chunk resent after its ack was lost moves nothing and is not an error; a resent
	// chunk that differs from what was verified is a fork; an empty one claiming more is a gap.
	mid := NewAnchor(testDev, 1, testK1())
	seg3 := cloneSeg(full)
	seg3.Entries = seg3.Entries[:3]
	mid, _, _ = VerifyPrefix(mid, seg3, nil)
	heads := map[uint64]Hash{}
	for n := uint64(1); n <= 3; n++ {
		heads[n], _ = w.HeadAt(n)
	}
	headAt := func(n uint64) (Hash, bool) { h, ok := heads[n]; return h, ok }
	again, fresh, err := VerifyPrefix(mid, seg3, headAt)
	if err != nil || len(fresh) != 0 || again != mid {
		t.Fatalf("resent chunk: %v, %d fresh, anchor moved %v", err, len(fresh), again != mid)
	}
	forked := cloneSeg(seg3)
	forked.Entries[1].T++
	_, _, err = VerifyPrefix(mid, forked, headAt)
	wantVerifyErr(t, err, NameFork, 2)
	empty := cloneSeg(full)
	empty.First, empty.Entries = 4, nil
	_, _, err = VerifyPrefix(mid, empty, headAt)
	wantVerifyErr(t, err, NameGap, 4)
	// Prefix tags are still checked; the final chunk's seal is too.
	seg := cloneSeg(full)
	seg.Entries = seg.Entries[:4]
	seg.Entries[2].T++
	_, _, err = VerifyPrefix(NewAnchor(testDev, 1, testK1()), seg, nil)
	wantVerifyErr(t, err, NameForgedEntry, 3)
	seg = cloneSeg(full)
	seg.Seal[3] ^= 1
	_, _, err = VerifyPrefix(NewAnchor(testDev, 1, testK1()), seg, nil)
	wantVerifyErr(t, err, NameBadSeal, 9)
}

// VerifyChunk hands back the head of every new entry, the same heads EntryHead computes,
// so a server stores them without hashing an entry twice.
func TestVerifyChunkReturnsHeads(t *testing.T) {
	w, _ := newTestWriter(t)
	appendN(t, w, 6)
	seg := w.Segment()
	a0 := NewAnchor(testDev, 1, testK1())
	v, err := VerifyChunk(a0, cloneSeg(seg), nil)
	if err != nil || v.Partial || v.Anchor.N != 6 || len(v.Heads) != len(v.Fresh) || len(v.Fresh) != 6 {
		t.Fatalf("VerifyChunk: %v partial=%v n=%d heads=%d", err, v.Partial, v.Anchor.N, len(v.Heads))
	}
	prev := a0.Head
	for i := range v.Fresh {
		want := EntryHead(testDev, 1, prev, &v.Fresh[i])
		if v.Heads[i] != want {
			t.Fatalf("head of entry %d: %x, EntryHead %x", v.Fresh[i].N, v.Heads[i], want)
		}
		prev = want
	}
	if v.Heads[5] != v.Anchor.Head {
		t.Fatal("last head is not the anchor's")
	}
	// A prefix chunk: partial, with heads up to its last entry.
	pre := cloneSeg(seg)
	pre.Entries = pre.Entries[:4]
	v, err = VerifyChunk(a0, pre, nil)
	if err != nil || !v.Partial || v.Anchor.N != 4 || len(v.Heads) != 4 || v.Heads[3] != v.Anchor.Head {
		t.Fatalf("prefix: %v partial=%v n=%d", err, v.Partial, v.Anchor.N)
	}
	// A failure leaves the anchor as it was.
	bad := cloneSeg(seg)
	bad.Seal[0] ^= 1
	if v, err = VerifyChunk(a0, bad, nil); !errors.Is(err, ErrBadSeal) || v.Anchor != a0 || v.Fresh != nil {
		t.Fatalf("bad seal: %v %+v", err, v.Anchor)
	}
}
