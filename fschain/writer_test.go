package fschain

import (
	"errors"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

func TestAppendVerifyPrune(t *testing.T) {
	w, _ := newTestWriter(t)
	srv := newServer()
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatalf("genesis: %v", err)
	}
	appendN(t, w, 10)
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	if srv.a.N != 10 || len(srv.got) != 10 {
		t.Fatalf("anchor %d, %d entries", srv.a.N, len(srv.got))
	}
	// Resending already verified entries is fine.
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatalf("retransmission: %v", err)
	}
	if err := w.Prune(srv.a.N, srv.a.Head); err != nil {
		t.Fatal(err)
	}
	if seg := w.Segment(); len(seg.Entries) != 0 || seg.First != 11 {
		t.Fatalf("after prune: %+v", seg)
	}
	appendN(t, w, 5)
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	if err := w.Prune(3, Hash{}); err != nil {
		t.Fatalf("prune below base: %v", err)
	}
	if err := w.Prune(14, Hash{1}); err == nil {
		t.Fatal("prune with the wrong head succeeded")
	}
	if err := w.Prune(99, Hash{}); err == nil {
		t.Fatal("prune beyond the log succeeded")
	}
}

func TestOpenReloads(t *testing.T) {
	w, st := newTestWriter(t)
	appendN(t, w, 7)
	srv := newServer()
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	if err := w.Prune(4, srv.heads[4]); err != nil {
		t.Fatal(err)
	}
	w2, rec, err := Open(st)
	if err != nil || rec {
		t.Fatalf("open: %v recovered=%v", err, rec)
	}
	n1, h1, s1 := w.State()
	n2, h2, s2 := w2.State()
	if n1 != n2 || h1 != h2 || s1 != s2 {
		t.Fatal("reopened state differs")
	}
	appendN(t, w2, 3)
	if err := srv.verify(w2.Segment()); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(st, testDev, 1, testK1()); !errors.Is(err, ErrExists) {
		t.Fatalf("create over a log: %v", err)
	}
	if _, _, err := Open(NewMemStorage()); !errors.Is(err, ErrNoState) {
		t.Fatalf("open empty: %v", err)
	}
}

func TestFileStorage(t *testing.T) {
	dir := t.TempDir()
	st, err := NewFileStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(st, testDev, 1, testK1())
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, w, 5)
	srv := newServer()
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	if err := w.Prune(2, srv.heads[2]); err != nil {
		t.Fatal(err)
	}
	st2, _ := NewFileStorage(dir)
	w2, rec, err := Open(st2)
	if err != nil || rec {
		t.Fatalf("open: %v %v", err, rec)
	}
	appendN(t, w2, 2)
	if err := srv.verify(w2.Segment()); err != nil {
		t.Fatal(err)
	}
	if srv.a.N != 7 {
		t.Fatalf("anchor at %d", srv.a.N)
	}
}

func TestAppendRejectsOversizePayload(t *testing.T) {
	w, _ := newTestWriter(t)
	if _, err := w.Append(1, wire.EntryBoot, make([]byte, wire.MaxPayload+1)); err == nil {
		t.Fatal("oversize payload appended")
	}
	if _, err := w.Append(1, wire.EntryApplication, make([]byte, wire.MaxPayload)); err != nil {
		t.Fatal(err)
	}
}
