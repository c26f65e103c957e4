package fschain

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

const testDev = "meter-0001"

func testK1() Key {
	var k Key
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

func newTestWriter(t testing.TB) (*Writer, *MemStorage) {
	t.Helper()
	st := NewMemStorage()
	w, err := Create(st, testDev, 1, testK1())
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}

// payloadFor makes a valid typed payload for entry i.
func payloadFor(i int) (uint16, []byte) {
	switch i % 4 {
	case 0:
		return wire.EntryCheckOK, wire.MustMarshal(&wire.CheckOKPayload{Files: uint32(i), DurationMS: 12})
	case 1:
		return wire.EntryRegister, wire.MustMarshal(&wire.RegisterPayload{Litres: uint64(1000 + i)})
	case 2:
		return wire.EntryBoot, wire.MustMarshal(&wire.BootPayload{BootCount: uint32(i), Result: "ok"})
	default:
		return wire.EntryCoverClose, wire.MustMarshal(&wire.EmptyPayload{})
	}
}

func appendN(t testing.TB, w *Writer, count int) []wire.Entry {
	t.Helper()
	var out []wire.Entry
	for i := 0; i < count; i++ {
		typ, p := payloadFor(i)
		e, err := w.Append(uint64(1767225600+60*i), typ, p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// heads returns a headAt function over a map.
func headsOf(m map[uint64]Hash) func(uint64) (Hash, bool) {
	return func(n uint64) (Hash, bool) { h, ok := m[n]; return h, ok }
}

// server is a minimal verifier: an anchor and every verified head.
type server struct {
	a     Anchor
	heads map[uint64]Hash
	got   []wire.Entry
}

func newServer() *server {
	a := NewAnchor(testDev, 1, testK1())
	return &server{a: a, heads: map[uint64]Hash{0: a.Head}}
}

func (s *server) verify(seg wire.Segment) error {
	a, fresh, err := Verify(s.a, seg, headsOf(s.heads))
	if err != nil {
		return err
	}
	c := newChain(s.a.Dev, s.a.Epoch)
	h := s.a.Head
	for _, e := range fresh {
		h = c.headOf(&h, e.N, e.T, e.Type, e.Payload, e.Tag)
		s.heads[e.N] = h
		s.got = append(s.got, cloneEntry(e))
	}
	s.a = a
	return nil
}

func cloneEntry(e wire.Entry) wire.Entry {
	e.Payload, e.Tag = bytes.Clone(e.Payload), bytes.Clone(e.Tag)
	return e
}

func cloneSeg(s wire.Segment) wire.Segment {
	es := make([]wire.Entry, len(s.Entries))
	for i, e := range s.Entries {
		es[i] = cloneEntry(e)
	}
	return wire.Segment{First: s.First, Entries: es, N: s.N, Head: bytes.Clone(s.Head), Seal: bytes.Clone(s.Seal)}
}

func wantVerifyErr(t *testing.T, err error, name string, seq uint64) {
	t.Helper()
	ve, ok := err.(*VerifyError)
	if !ok {
		t.Fatalf("got %v, want %s at %d", err, name, seq)
	}
	if ve.Name != name || ve.Seq != seq {
		t.Fatalf("got %v, want %s at %d", err, name, seq)
	}
}

func TestHMACMatchesStdlib(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 200, 256, 257, 1000} {
		var k [32]byte
		copy(k[:], fmt.Sprint("key", n))
		msg := bytes.Repeat([]byte{byte(n)}, n)
		m := hmac.New(sha256.New, k[:])
		m.Write(msg)
		if got := hmac256(&k, msg); !bytes.Equal(got[:], m.Sum(nil)) {
			t.Fatalf("hmac256 differs from crypto/hmac at %d bytes", n)
		}
	}
}
