package fschain

import (
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// The known classes of sealed-log bugs, as found in systemd's Forward Secure Sealing, tried
// against FS-chain through the offline check (`fieldseal log verify` with K_1) and the
// server's verifier. FS-chain has no time-based sealing epochs: every entry carries a tag
// under its own key K_n (the key evolves per entry) and its predecessor's head, and the
// seal covers the claimed end under K_{n+1}; so there is no unsealed period to cut, and a
// newer key cannot vouch for older positions.

// forgeTail keeps the honest entries 1..keep and appends count entries numbered from
// first, tagged and sealed by a thief who holds key k (= K_first if he is honest about
// positions, or any newer key).
func forgeTail(seg wire.Segment, keep int, first uint64, count int, k Key) wire.Segment {
	c := newChain(testDev, 1)
	out := cloneSeg(seg)
	out.Entries = out.Entries[:keep]
	h := GenesisHead(testDev, 1)
	for i := range out.Entries {
		e := &out.Entries[i]
		h = c.headOf(&h, e.N, e.T, e.Type, e.Payload, e.Tag)
	}
	for i := 0; i < count; i++ {
		n := first + uint64(i)
		p := wire.MustMarshal(&wire.CheckOKPayload{Files: 12})
		tag, head := c.step(&k, &h, n, 1767400000+n, wire.EntryCheckOK, p)
		out.Entries = append(out.Entries, wire.Entry{N: n, T: 1767400000 + n, Type: wire.EntryCheckOK, Payload: p, Tag: tag[:]})
		h = head
		k = Evolve(k)
	}
	out.N = first + uint64(count) - 1
	if count == 0 {
		out.N = uint64(keep)
	}
	s := c.seal(&k, out.N, &h)
	out.Head, out.Seal = h[:], s[:]
	return out
}

func exportOf(seg wire.Segment) *Export {
	h0 := GenesisHead(testDev, 1)
	return &Export{Format: ExportFormat, Dev: testDev, Epoch: 1, BaseH: h0[:], Entries: seg.Entries, N: seg.N, Head: seg.Head, Seal: seg.Seal}
}

func wantCheck(t *testing.T, x *Export, name string, seq uint64) {
	t.Helper()
	k1 := testK1()
	res, err := CheckExport(x, CheckOptions{ChainKey: &k1})
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyMismatch {
		t.Fatalf("a forged log passed as a wrong key (a usage error, not tamper)")
	}
	if res.Err == nil || res.Err.Name != name || res.Err.Seq != seq {
		t.Fatalf("offline check: %v, want %s at %d", res.Err, name, seq)
	}
	_, _, verr := Verify(NewAnchor(testDev, 1, testK1()), x.Segment(), nil)
	wantVerifyErr(t, verr, name, seq)
}

// CVE-2023-31438 class (D11): entries cut and new ones sealed under a newer key. A thief
// who reads the device at n = 10 holds K_11; he truncates the log after entry 5 and writes
// replacement entries (a) at positions 6.. tagged under K_11, K_12, … (he has no K_6), or
// (b) renumbered to follow his key, 11.., and seals them. Neither verifies.
func TestThreatD11_ResealUnderNewerKey_CVE_2023_31438(t *testing.T) {
	w, _ := newTestWriter(t)
	appendN(t, w, 10)
	stolen := w.s.Key // K_11
	seg := w.Segment()
	wantCheck(t, exportOf(forgeTail(seg, 5, 6, 3, stolen)), NameForgedEntry, 6)
	wantCheck(t, exportOf(forgeTail(seg, 5, 11, 3, stolen)), NameGap, 6)
	// Re-sealing the whole cut log under the newer key (no new entries): the seal of n = 5
	// must be under K_6, which is erased.
	wantCheck(t, exportOf(forgeTail(seg, 5, 6, 0, stolen)), NameBadSeal, 5)
}

// CVE-2023-31439 class (D12): a period with no sealed entries lets the log be cut and
// continued. A device logs nothing for a month (an "empty period"), then more entries;
// the thief, at n = 12, cuts everything after the quiet period's last entry (n = 6) and
// continues as if nothing happened since. FS-chain has no time-based seals: the next entry
// must follow n = 6 under K_7 (erased) and chain to h_6, and the claimed end needs its own
// seal; every continuation fails.
func TestThreatD12_EmptyPeriodCutAndContinue_CVE_2023_31439(t *testing.T) {
	w, _ := newTestWriter(t)
	appendN(t, w, 6)
	month := uint64(30 * 24 * 3600)
	for i := 0; i < 6; i++ {
		if _, err := w.Append(1767225600+month+uint64(i), wire.EntryCheckOK, wire.MustMarshal(&wire.CheckOKPayload{Files: 1})); err != nil {
			t.Fatal(err)
		}
	}
	stolen := w.s.Key // K_13
	seg := w.Segment()
	wantCheck(t, exportOf(forgeTail(seg, 6, 7, 2, stolen)), NameForgedEntry, 7) // continue at 7 with the newer key
	wantCheck(t, exportOf(forgeTail(seg, 6, 13, 2, stolen)), NameGap, 7)        // continue numbered after the key
	wantCheck(t, exportOf(forgeTail(seg, 6, 7, 0, stolen)), NameBadSeal, 6)     // just cut, sealed with what he has
	// The honest log verifies, quiet month included.
	k1 := testK1()
	if res, err := CheckExport(exportOf(seg), CheckOptions{ChainKey: &k1}); err != nil || res.Err != nil || !res.TagsChecked {
		t.Fatalf("honest log: %v %+v", err, res)
	}
}
