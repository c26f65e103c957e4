package fschain

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

func TestCheckExportAfterPrune(t *testing.T) {
	w, _ := newTestWriter(t)
	appendN(t, w, 8)
	srv := newServer()
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	if err := w.Prune(3, srv.heads[3]); err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	pub := priv.Public().(ed25519.PublicKey)
	sign := func(n uint64) []byte {
		h := srv.heads[n]
		return wire.SignReceipt(&wire.Receipt{Dev: testDev, Epoch: 1, N: n, Head: h[:], Time: 1}, priv)
	}
	x := w.Export()
	x.Receipts = [][]byte{sign(2), sign(3), sign(8)}
	for _, enc := range []func() ([]byte, error){x.EncodeCBOR, x.EncodeJSON} {
		b, err := enc()
		if err != nil {
			t.Fatal(err)
		}
		y, err := DecodeExport(b)
		if err != nil {
			t.Fatal(err)
		}
		k := testK1()
		res, err := CheckExport(y, CheckOptions{ChainKey: &k, ServerPub: pub})
		if err != nil || res.Err != nil || !res.TagsChecked || res.Covered != 8 || len(res.Receipts) != 3 || !res.Receipts[0].Pruned {
			t.Fatalf("check: %v %+v", err, res)
		}
	}
	// A receipt for a head the log does not have: fork at its n.
	bad := srv.heads[5]
	bad[0] ^= 1
	x.Receipts = [][]byte{wire.SignReceipt(&wire.Receipt{Dev: testDev, Epoch: 1, N: 5, Head: bad[:], Time: 1}, priv)}
	res, err := CheckExport(x, CheckOptions{ServerPub: pub})
	if err != nil || res.Err == nil || res.Err.Name != NameFork || res.Err.Seq != 5 {
		t.Fatalf("bad receipt head: %v %+v", err, res.Err)
	}
	// A receipt for another device.
	h := srv.heads[5]
	x.Receipts = [][]byte{wire.SignReceipt(&wire.Receipt{Dev: "meter-0002", Epoch: 1, N: 5, Head: h[:], Time: 1}, priv)}
	if res, _ := CheckExport(x, CheckOptions{ServerPub: pub}); res.Err == nil || res.Err.Name != NameBadReceipt {
		t.Fatalf("foreign receipt: %+v", res.Err)
	}
	// A base that is not h_0 at n = 0.
	x = w.Export()
	x.BaseN = 0
	if res, _ := CheckExport(x, CheckOptions{}); res.Err == nil || res.Err.Name != NameFork {
		t.Fatalf("fake genesis: %+v", res.Err)
	}
}

func TestSignReceiptOpens(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, 32))
	a := NewAnchor(testDev, 1, testK1())
	r, err := VerifyReceipt(SignReceipt(a, 1767225600, priv), priv.Public().(ed25519.PublicKey), testDev, 1)
	if err != nil || r.N != 0 || !bytes.Equal(r.Head, a.Head[:]) || r.Time != 1767225600 {
		t.Fatalf("%v %+v", err, r)
	}
	if _, err := VerifyReceipt(SignReceipt(a, 1, priv), priv.Public().(ed25519.PublicKey), testDev, 2); err == nil {
		t.Fatal("receipt for epoch 1 accepted for epoch 2")
	}
}
