package fschain_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/fschain/internal/vectors"
	"github.com/fieldseal/fieldseal/wire"
)

var vectorDir = filepath.Join("..", "testdata", "vectors", "fschain")

func TestVectorsUpToDate(t *testing.T) {
	files, err := vectors.Generate()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(vectorDir, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale or missing: run `go generate ./fschain`", name)
		}
	}
}

func readVectors(t *testing.T, sub ...string) map[string][]byte {
	dir := filepath.Join(append([]string{vectorDir}, sub...)...)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = b
		}
	}
	return out
}

func key(t *testing.T, b []byte) fschain.Key {
	t.Helper()
	if len(b) != 32 {
		t.Fatalf("key of %d bytes", len(b))
	}
	return fschain.Key(b)
}

func TestChainVectors(t *testing.T) {
	seen := 0
	for name, b := range readVectors(t) {
		var v vectors.Chain
		if err := json.Unmarshal(b, &v); err != nil || v.Kind != "chain" {
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			k := key(t, v.K1)
			h := fschain.GenesisHead(v.Dev, v.Epoch)
			if !bytes.Equal(h[:], v.GenesisHead) {
				t.Fatal("genesis head")
			}
			if s := fschain.Seal(v.Dev, v.Epoch, k, 0, h); !bytes.Equal(s[:], v.Seal0) {
				t.Fatal("seal_0")
			}
			// The Writer produces the same entries, records and seals.
			st := fschain.NewMemStorage()
			w, err := fschain.Create(st, v.Dev, v.Epoch, k)
			if err != nil {
				t.Fatal(err)
			}
			var records []byte
			for _, s := range v.Steps {
				if !bytes.Equal(fschain.Msg(v.Dev, v.Epoch, s.N, s.T, s.Type, h, s.Payload), s.Msg) {
					t.Fatalf("msg_%d", s.N)
				}
				tag, head, next, seal := fschain.Step(v.Dev, v.Epoch, k, h, s.N, s.T, s.Type, s.Payload)
				if !bytes.Equal(tag[:], s.Tag) || !bytes.Equal(head[:], s.Head) || !bytes.Equal(next[:], s.NextKey) || !bytes.Equal(seal[:], s.Seal) {
					t.Fatalf("step %d differs", s.N)
				}
				e, err := w.Append(s.T, s.Type, s.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(e.Tag, s.Tag) || !bytes.Equal(fschain.EncodeRecord(e), s.Record) {
					t.Fatalf("writer entry %d differs", s.N)
				}
				if _, _, ws := w.State(); !bytes.Equal(ws[:], s.Seal) {
					t.Fatalf("writer seal %d differs", s.N)
				}
				records = append(records, s.Record...)
				h, k = head, next
			}
			if log, _ := st.ReadLog(); !bytes.Equal(log, records) {
				t.Fatal("log area differs from the records")
			}
			var seg wire.Segment
			if err := wire.Unmarshal(v.SegmentCBOR, &seg); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(wire.MustMarshal(w.Segment()), v.SegmentCBOR) {
				t.Fatal("writer segment encoding differs")
			}
			a, _, err := fschain.Verify(fschain.NewAnchor(v.Dev, v.Epoch, key(t, v.K1)), seg, nil)
			if err != nil || a.Head != h || a.NextKey != k {
				t.Fatalf("verify from genesis: %v", err)
			}
		})
	}
	if seen < 4 {
		t.Fatalf("only %d chain vectors", seen)
	}
}

func TestVerifyVectors(t *testing.T) {
	names := map[string]bool{}
	for name, b := range readVectors(t) {
		var v vectors.Verify
		if err := json.Unmarshal(b, &v); err != nil || v.Kind != "verify" {
			continue
		}
		names[v.Want.Error] = true
		t.Run(name, func(t *testing.T) {
			a := fschain.Anchor{Dev: v.Dev, Epoch: v.Epoch, N: v.Anchor.N, Head: fschain.Hash(v.Anchor.Head), NextKey: key(t, v.Anchor.NextKey)}
			heads := map[uint64]fschain.Hash{}
			for n, h := range v.KnownHeads {
				u, _ := strconv.ParseUint(n, 10, 64)
				heads[u] = fschain.Hash(h)
			}
			headAt := func(n uint64) (fschain.Hash, bool) { h, ok := heads[n]; return h, ok }
			var seg wire.Segment
			if err := wire.Unmarshal(v.SegmentCBOR, &seg); err != nil {
				t.Fatal(err)
			}
			js := wire.Segment{First: v.Segment.First, Entries: []wire.Entry{}, N: v.Segment.N, Head: v.Segment.Head, Seal: v.Segment.Seal}
			for _, e := range v.Segment.Entries {
				js.Entries = append(js.Entries, wire.Entry{N: e.N, T: e.T, Type: e.Type, Payload: e.Payload, Tag: e.Tag})
			}
			if !reflect.DeepEqual(normalize(seg), normalize(js)) {
				t.Fatal("segment and segment_cbor differ")
			}
			got, fresh, err := fschain.Verify(a, seg, headAt)
			if v.Want.Error != "" {
				ve, ok := err.(*fschain.VerifyError)
				if !ok || ve.Name != v.Want.Error || ve.Seq != v.Want.Seq {
					t.Fatalf("got %v, want %s at %d", err, v.Want.Error, v.Want.Seq)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.N != v.Want.Anchor.N || !bytes.Equal(got.Head[:], v.Want.Anchor.Head) || !bytes.Equal(got.NextKey[:], v.Want.Anchor.NextKey) {
				t.Fatalf("anchor %d %x", got.N, got.Head)
			}
			var ns []uint64
			for _, e := range fresh {
				ns = append(ns, e.N)
			}
			if !reflect.DeepEqual(ns, v.Want.Fresh) {
				t.Fatalf("fresh %v, want %v", ns, v.Want.Fresh)
			}
		})
	}
	for _, n := range []string{"", "gap", "reorder", "rollback", "fork", "forged-entry", "head-mismatch", "bad-seal"} {
		if !names[n] {
			t.Errorf("no vector for %q", n)
		}
	}
}

func normalize(s wire.Segment) wire.Segment {
	for i := range s.Entries {
		if len(s.Entries[i].Payload) == 0 {
			s.Entries[i].Payload = nil
		}
	}
	return s
}

func TestExportVectors(t *testing.T) {
	seen := 0
	for name, b := range readVectors(t, "export") {
		var v vectors.ExportVector
		if err := json.Unmarshal(b, &v); err != nil || v.Kind != "export" {
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			x, err := fschain.DecodeExport(v.ExportCBOR)
			if err != nil {
				t.Fatal(err)
			}
			y, err := fschain.DecodeExport(v.ExportJSON)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalizeExport(x), normalizeExport(y)) {
				t.Fatal("CBOR and JSON encodings differ")
			}
			k := key(t, v.K1)
			for _, c := range []struct {
				key  *fschain.Key
				want vectors.ExportWant
			}{{&k, v.Want}, {nil, v.WantNoKey}} {
				res, err := fschain.CheckExport(x, fschain.CheckOptions{ChainKey: c.key, ServerPub: ed25519.PublicKey(v.ServerPub)})
				if err != nil {
					t.Fatal(err)
				}
				w := c.want
				if w.Error != "" {
					if res.Err == nil || res.Err.Name != w.Error || res.Err.Seq != w.Seq {
						t.Fatalf("key=%v: got %v, want %s at %d", c.key != nil, res.Err, w.Error, w.Seq)
					}
					continue
				}
				if res.Err != nil || res.Covered != w.Covered || len(res.Receipts) != w.Receipts {
					t.Fatalf("key=%v: got %v, covered %d, %d receipts", c.key != nil, res.Err, res.Covered, len(res.Receipts))
				}
			}
		})
	}
	if seen < 2 {
		t.Fatalf("only %d export vectors", seen)
	}
}

func normalizeExport(x *fschain.Export) *fschain.Export {
	s := normalize(x.Segment())
	y := *x
	y.Entries = s.Entries
	return &y
}
