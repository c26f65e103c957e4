package server

import (
	"bytes"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// The state machine, table by table, without a server: evaluate, rejection, admit and
// checkManifest are pure functions of their inputs.

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func row(state string) *store.Device {
	return &store.Device{ID: "m1", Product: "p", Epoch: 1, Version: 7, State: state, StateSince: t0.Add(-time.Hour),
		DownlinkKey: bytes.Repeat([]byte{7}, 32), AnchorN: 4, AnchorHead: bytes.Repeat([]byte{4}, 32), Receipt: []byte{1},
		LastRSeq: 10, LastSeen: t0.Add(-15 * time.Minute), LastDeviceTime: uint64(t0.Add(-15 * time.Minute).Unix()),
		LastBoot: 1, ReportInterval: 900, Nonce: []byte("n1")}
}

// entry is a verified log entry for the tables: type, device time, payload.
type entry struct {
	typ     uint16
	t       uint64
	payload any
}

func input(d *store.Device, flags uint32, es ...entry) *evalInput {
	r := &wire.Report{Dev: d.ID, Epoch: d.Epoch, RSeq: d.LastRSeq + 1, Boot: d.LastBoot, Time: uint64(t0.Unix()),
		Man: wire.ManifestRef{Product: d.Product, Version: 1}, State: flags, Nonce: d.Nonce}
	in := &evalInput{Dev: d, Report: r, ReportHash: []byte{1}, Now: t0, Nonce: []byte("n2"), TokenID: []byte("new-token-id-16b"),
		From: fschain.Anchor{Dev: d.ID, Epoch: d.Epoch, N: d.AnchorN}, Receipt: receiptView{N: d.AnchorN, Time: uint64(t0.Unix()), OK: true}}
	n := d.AnchorN
	for _, e := range es {
		n++
		var p []byte
		if e.payload != nil {
			p = wire.MustMarshal(e.payload)
		}
		in.Chain.Fresh = append(in.Chain.Fresh, wire.Entry{N: n, T: e.t, Type: e.typ, Payload: p, Tag: make([]byte, 16)})
		in.Chain.Heads = append(in.Chain.Heads, fschain.Hash{byte(n)})
		dec, _ := wire.DecodePayload(e.typ, p)
		in.Payloads = append(in.Payloads, dec)
	}
	in.Chain.Anchor = fschain.Anchor{Dev: d.ID, Epoch: d.Epoch, N: n, Head: fschain.Hash{byte(n)}}
	r.Log.N = n
	return in
}

func serviceToken(id string, issued time.Time, window uint32) store.Token {
	return store.Token{ID: []byte(id), Dev: "m1", Epoch: 1, Action: wire.TokenService, Sealed: []byte("sealed-" + id),
		Issued: issued, Expires: issued.Add(7 * 24 * time.Hour), Window: window}
}

func TestEvaluateStateMachine(t *testing.T) {
	now := uint64(t0.Unix())
	inService := func() *store.Device {
		d := row(store.StateService)
		d.WindowUntil = now + 600 // server time
		return d
	}
	cases := []struct {
		name       string
		in         *evalInput
		state      string
		reason     string
		moved      bool
		explained  uint32
		windowOpen bool
	}{
		{name: "first report", in: input(row(store.StateProvisioned), 0), state: store.StateTrusted, reason: "first-report", moved: true},
		{name: "clean report keeps trusted", in: input(row(store.StateTrusted), 0, entry{wire.EntryRegister, now, &wire.RegisterPayload{Litres: 5}}), state: store.StateTrusted},
		{name: "suspect returns on a clean report", in: input(row(store.StateSuspect), 0), state: store.StateTrusted, reason: "clean-report", moved: true},
		{name: "silent returns with a continuous log", in: input(row(store.StateSilent), 0), state: store.StateTrusted, reason: "returned-log-continuous", moved: true},
		{name: "check-fail is tamper", in: input(row(store.StateTrusted), wire.StateTamperLatched|wire.StateCodeMismatch,
			entry{wire.EntryCheckFail, now, &wire.CheckFailPayload{Bad: []wire.BadFile{{Path: "a.mpy", Kind: "modified"}}}}),
			state: store.StateTampered, reason: "code-mismatch", moved: true, explained: wire.StateTamperLatched},
		{name: "cover opened outside a window", in: input(row(store.StateTrusted), wire.StateCoverWasOpen|wire.StateTamperLatched,
			entry{wire.EntryCoverOpen, now, &wire.CoverOpenPayload{Source: wire.CoverSourceIRQ}}),
			state: store.StateTampered, reason: "cover-open", moved: true, explained: wire.StateCoverWasOpen | wire.StateTamperLatched},
		{name: "cover opened inside a window is expected", in: input(inService(), 0,
			entry{wire.EntryCoverOpen, now, &wire.CoverOpenPayload{Source: wire.CoverSourceService}}),
			state: store.StateService, explained: wire.StateCoverWasOpen | wire.StateTamperLatched, windowOpen: true},
		{name: "magnet is tamper", in: input(row(store.StateTrusted), 0, entry{wire.EntryMagnet, now, &wire.MagnetPayload{Strength: 1}}),
			state: store.StateTampered, reason: "magnet", moved: true, explained: wire.StateMagnet | wire.StateTamperLatched},
		{name: "overflow is suspect", in: input(row(store.StateTrusted), 0, entry{wire.EntryOverflow, now, &wire.OverflowPayload{Dropped: 3}}),
			state: store.StateSuspect, reason: "overflow", moved: true},
		{name: "bad downlink is suspect", in: input(row(store.StateTrusted), 0, entry{wire.EntryBadDownlink, now, &wire.BadDownlinkPayload{Why: "ack: bad-mac"}}),
			state: store.StateSuspect, reason: "bad-downlink", moved: true},
		{name: "an unknown token is token-replay", in: input(row(store.StateTrusted), 0, entry{wire.EntryServiceBegin, now, &wire.ServiceBeginPayload{TokenID: []byte("nope")}}),
			state: store.StateSuspect, reason: "token-replay", moved: true},
		{name: "clock going backwards within a boot", in: func() *evalInput {
			in := input(row(store.StateTrusted), 0)
			in.Report.Time = in.Dev.LastDeviceTime - 7200
			return in
		}(), state: store.StateSuspect, reason: "clock", moved: true},
		{name: "a partial chunk promotes nothing", in: func() *evalInput {
			in := input(row(store.StateSuspect), 0, entry{wire.EntryRegister, now, &wire.RegisterPayload{Litres: 1}})
			in.Chain.Partial, in.Report.Log.N = true, in.Report.Log.N+5
			return in
		}(), state: store.StateSuspect},
		{name: "tampered is sticky", in: input(row(store.StateTampered), 0), state: store.StateTampered},
		{name: "latched flags explained by stored entries", in: func() *evalInput {
			in := input(row(store.StateTrusted), wire.StateCoverWasOpen|wire.StateTamperLatched)
			in.Explained = wire.StateCoverWasOpen | wire.StateTamperLatched
			return in
		}(), state: store.StateTrusted, explained: wire.StateCoverWasOpen | wire.StateTamperLatched},
		{name: "a latched flag without its entry is evidence lost", in: input(row(store.StateTrusted), wire.StateCoverWasOpen|wire.StateTamperLatched),
			state: store.StateTampered, reason: ReasonEvidenceLost, moved: true, explained: wire.StateCoverWasOpen | wire.StateTamperLatched},
		{name: "a magnet flag is not explained by a cover entry", in: func() *evalInput {
			in := input(row(store.StateTrusted), wire.StateMagnet|wire.StateTamperLatched)
			in.Explained = wire.StateCoverWasOpen | wire.StateTamperLatched
			return in
		}(), state: store.StateTampered, reason: ReasonEvidenceLost, moved: true, explained: latchFlags},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := *c.in.Dev
			out := evaluate(c.in)
			nd := out.Device
			if nd.State != c.state || (c.reason != "" && nd.StateReason != c.reason) || out.Transitioned != c.moved {
				t.Fatalf("state %s (%s) moved=%v; want %s (%s) moved=%v", nd.State, nd.StateReason, out.Transitioned, c.state, c.reason, c.moved)
			}
			if out.Explained != c.explained {
				t.Fatalf("explained flags %#x, want %#x", out.Explained, c.explained)
			}
			if c.windowOpen != (nd.WindowUntil != 0) {
				t.Fatalf("window until %d", nd.WindowUntil)
			}
			if before.State != c.in.Dev.State || before.Version != c.in.Dev.Version || before.LastRSeq != c.in.Dev.LastRSeq {
				t.Fatal("evaluate modified its input row")
			}
			// Every accepted report: the row advances, every entry is stored with the head
			// verification computed, the ack answers this report.
			if nd.LastRSeq != c.in.Report.RSeq || nd.AnchorN != c.in.Chain.Anchor.N || !nd.LastSeen.Equal(t0) || nd.Rejections != 0 && !c.in.Chain.Partial {
				t.Fatalf("row not advanced: %+v", nd)
			}
			if len(out.Change.Events) != len(c.in.Chain.Fresh) {
				t.Fatalf("%d events for %d entries", len(out.Change.Events), len(c.in.Chain.Fresh))
			}
			for i, ev := range out.Change.Events {
				if !bytes.Equal(ev.Head, c.in.Chain.Heads[i][:]) {
					t.Fatalf("event %d stored head %x, verification computed %x", ev.N, ev.Head, c.in.Chain.Heads[i])
				}
			}
			if out.Ack.AckedRSeq != c.in.Report.RSeq || !bytes.Equal(out.Ack.Nonce, c.in.Nonce) || out.Ack.Anchor.N != nd.AnchorN {
				t.Fatalf("ack %+v", out.Ack)
			}
			if c.moved && (len(out.Change.Audits) == 0 || out.SignReceipt == nil) {
				t.Fatal("a transition without its audit record or a fresh receipt")
			}
			alerted := len(out.Change.Alerts) > 0
			if want := c.moved && (c.state == store.StateTampered || c.state == store.StateSuspect); alerted != want {
				t.Fatalf("alerts %+v", out.Change.Alerts)
			}
		})
	}
}

// A service token opens a window in server time: from its delivery (no later than the
// ack of the previous report) for its window plus one report interval.
func TestEvaluateServiceWindow(t *testing.T) {
	now := uint64(t0.Unix())
	d := row(store.StateService)
	tok := serviceToken("tok-1", t0.Add(-time.Hour), 600)
	in := input(d, 0, entry{wire.EntryServiceBegin, now, &wire.ServiceBeginPayload{TokenID: tok.ID}},
		entry{wire.EntryCoverOpen, now, &wire.CoverOpenPayload{Source: wire.CoverSourceService}})
	in.Pending = []store.Token{tok}
	out := evaluate(in)
	want := uint64(d.LastSeen.Unix()) + 600 + 900
	if out.Device.WindowUntil != want || out.Device.State != store.StateService {
		t.Fatalf("window until %d (want %d), state %s (%s)", out.Device.WindowUntil, want, out.Device.State, out.Device.StateReason)
	}
	if len(out.Change.UsedTokens) != 1 || !bytes.Equal(out.Change.UsedTokens[0], tok.ID) || len(out.Ack.Commands) != 0 {
		t.Fatalf("token not used, or delivered again: used %q, commands %d", out.Change.UsedTokens, len(out.Ack.Commands))
	}
	// The same token again: used.
	in2 := input(out.Device, 0, entry{wire.EntryServiceBegin, now, &wire.ServiceBeginPayload{TokenID: tok.ID}})
	used := tok
	used.Used = true
	in2.Named = []store.Token{used}
	if out2 := evaluate(in2); out2.Device.State != store.StateSuspect || out2.Device.StateReason != "token-replay" {
		t.Fatalf("used token: %s (%s)", out2.Device.State, out2.Device.StateReason)
	}
	// Another device's token, looked up by id: refused.
	other := serviceToken("tok-2", t0, 600)
	other.Dev = "m2"
	in3 := input(row(store.StateService), 0, entry{wire.EntryServiceBegin, now, &wire.ServiceBeginPayload{TokenID: other.ID}})
	in3.Named = []store.Token{other}
	if out3 := evaluate(in3); out3.Device.StateReason != "token-replay" || out3.Device.WindowUntil != 0 {
		t.Fatalf("another device's token: %s (%s), window %d", out3.Device.State, out3.Device.StateReason, out3.Device.WindowUntil)
	}
}

func TestEvaluateTokensAndReceipt(t *testing.T) {
	d := row(store.StateTrusted)
	in := input(d, 0)
	in.Upgrade = &store.Manifest{Product: "p", Version: 2, Signed: []byte("signed-v2")}
	pendingClear := store.Token{ID: []byte("clear"), Dev: "m1", Epoch: 1, Action: wire.TokenClear, Sealed: []byte("sealed-clear"), Issued: t0, Expires: t0.Add(time.Hour)}
	expired := store.Token{ID: []byte("old"), Dev: "m1", Epoch: 1, Action: wire.TokenClear, Sealed: []byte("sealed-old"), Issued: t0.Add(-48 * time.Hour), Expires: t0.Add(-time.Hour)}
	in.Pending = []store.Token{pendingClear, expired}
	out := evaluate(in)
	if len(out.Change.Tokens) != 1 || out.Change.Tokens[0].Action != wire.TokenManifest || !bytes.Equal(out.Change.Tokens[0].ID, in.TokenID) {
		t.Fatalf("manifest token not issued: %+v", out.Change.Tokens)
	}
	tok, err := wire.OpenToken(out.Change.Tokens[0].Sealed, "m1", d.DownlinkKey)
	if err != nil || tok.UntilRSeq != in.Report.RSeq+tokenLifetimeRSeq || !bytes.Equal(tok.Args.Manifest, []byte("signed-v2")) {
		t.Fatalf("manifest token %+v %v", tok, err)
	}
	if len(out.Ack.Commands) != 2 || !bytes.Equal(out.Ack.Commands[0], []byte("sealed-clear")) {
		t.Fatalf("commands %q: want the pending clear token and the new manifest token, not the expired one", out.Ack.Commands)
	}
	// Running what it must: the pending manifest token is spent.
	in = input(d, 0)
	in.Pending = []store.Token{{ID: []byte("man"), Dev: "m1", Epoch: 1, Action: wire.TokenManifest, Sealed: []byte("s"), Expires: t0.Add(time.Hour)}}
	if out := evaluate(in); len(out.Change.UsedTokens) != 1 || len(out.Ack.Commands) != 0 {
		t.Fatalf("manifest token after the upgrade: used %q, commands %d", out.Change.UsedTokens, len(out.Ack.Commands))
	}
	// Receipts: none due for a quiet report with a recent receipt (the stored one goes out
	// only when it is about the new anchor); due on a tamper entry.
	in = input(d, 0, entry{wire.EntryRegister, uint64(t0.Unix()), &wire.RegisterPayload{Litres: 1}})
	in.ReceiptInterval = time.Hour
	if out := evaluate(in); out.SignReceipt != nil || out.Ack.Receipt != nil {
		t.Fatal("a receipt signed for a routine report")
	}
	in = input(d, 0, entry{wire.EntryMagnet, uint64(t0.Unix()), &wire.MagnetPayload{Strength: 1}})
	in.ReceiptInterval = time.Hour
	if out := evaluate(in); out.SignReceipt == nil || out.SignReceipt.N != in.Chain.Anchor.N {
		t.Fatal("no receipt for tamper evidence")
	}
}

func TestRejection(t *testing.T) {
	r := &wire.Report{Dev: "m1", Epoch: 1, RSeq: 3}
	cases := []struct {
		name      string
		reason    string
		rejected  uint32 // rejections before
		lastAlert time.Time
		state     string
		changed   bool
		alert     bool
	}{
		{name: "replay: audited, first alert", reason: ReasonReplay, state: store.StateTrusted, alert: true},
		{name: "replay within the hour: no alert", reason: ReasonReplay, lastAlert: t0.Add(-10 * time.Minute), state: store.StateTrusted},
		{name: "replay an hour later: alert", reason: ReasonReplay, lastAlert: t0.Add(-61 * time.Minute), state: store.StateTrusted, alert: true},
		{name: "replays never count towards suspect", reason: ReasonReplay, rejected: 2, lastAlert: t0, state: store.StateTrusted},
		{name: "bad-seal is tamper", reason: fschain.NameBadSeal, state: store.StateTampered, changed: true, alert: true},
		{name: "gap is suspect", reason: fschain.NameGap, state: store.StateSuspect, changed: true, alert: true},
		{name: "a stale nonce is counted", reason: ReasonStaleNonce, state: store.StateTrusted, changed: true},
		{name: "the third rejection in a row is suspect", reason: ReasonStaleNonce, rejected: 2, state: store.StateSuspect, changed: true, alert: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := row(store.StateTrusted)
			d.Rejections = c.rejected
			out := rejection(rejectInput{Dev: d, Report: r, Reject: reject(c.reason, "x"), LastAlert: c.lastAlert, Now: t0})
			if (out.Change.Device != nil) != c.changed {
				t.Fatalf("row changed: %v, want %v", out.Change.Device != nil, c.changed)
			}
			state := d.State
			if out.Device != nil {
				state = out.Device.State
				if out.Device.Rejections != c.rejected+1 {
					t.Fatalf("rejections %d", out.Device.Rejections)
				}
			}
			if state != c.state {
				t.Fatalf("state %s, want %s", state, c.state)
			}
			if (len(out.Change.Alerts) > 0) != c.alert || out.ReplayAlert != (c.alert && c.reason == ReasonReplay) {
				t.Fatalf("alerts %+v", out.Change.Alerts)
			}
			if len(out.Change.Audits) == 0 || out.Change.Audits[0].Reason != c.reason {
				t.Fatal("rejection not audited")
			}
			if out.Ack == nil || out.Ack.Reject != c.reason || out.Ack.AckedRSeq != r.RSeq || out.Ack.Anchor.N != d.AnchorN {
				t.Fatalf("ack %+v", out.Ack)
			}
		})
	}
	// Another epoch: recorded, but the device cannot be told under the current one.
	out := rejection(rejectInput{Dev: row(store.StateTrusted), Report: &wire.Report{Epoch: 2, RSeq: 1}, Reject: reject(ReasonWrongEpoch, "x"), Now: t0})
	if out.Ack != nil {
		t.Fatal("an ack for another epoch")
	}
}

func TestAdmit(t *testing.T) {
	d := row(store.StateTrusted)
	d.LastAck, d.LastReportHash, d.PrevNonce = []byte("ack"), []byte("h"), []byte("n0")
	for _, c := range []struct {
		name   string
		mod    func(r *wire.Report)
		hash   string
		retx   bool
		reason string
	}{
		{name: "next report", mod: func(r *wire.Report) {}},
		{name: "previous nonce", mod: func(r *wire.Report) { r.Nonce = []byte("n0") }},
		{name: "wrong epoch", mod: func(r *wire.Report) { r.Epoch = 2 }, reason: ReasonWrongEpoch},
		{name: "exact retransmission", mod: func(r *wire.Report) { r.RSeq = 10 }, hash: "h", retx: true},
		{name: "same rseq, other bytes", mod: func(r *wire.Report) { r.RSeq = 10 }, reason: ReasonReplay},
		{name: "older rseq", mod: func(r *wire.Report) { r.RSeq = 3 }, reason: ReasonReplay},
		{name: "stale nonce", mod: func(r *wire.Report) { r.Nonce = []byte("zz") }, reason: ReasonStaleNonce},
	} {
		r := &wire.Report{Epoch: 1, RSeq: 11, Nonce: []byte("n1")}
		c.mod(r)
		hash := c.hash
		if hash == "" {
			hash = "other"
		}
		retx, re := admit(d, r, []byte(hash))
		got := ""
		if re != nil {
			got = re.Reason
		}
		if retx != c.retx || got != c.reason {
			t.Errorf("%s: retransmission %v, reason %q", c.name, retx, got)
		}
	}
}

func TestCheckManifest(t *testing.T) {
	root1, root2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	view := manifestView{Versions: map[uint64]*store.Manifest{1: {Version: 1, Root: root1}, 2: {Version: 2, Root: root2}}, Current: 2}
	for _, c := range []struct {
		name             string
		version, running uint64
		pinned           uint64
		root             []byte
		product          string
		upgrade          uint64
		reason           string
		view             *manifestView
	}{
		{name: "current", version: 2, root: root2},
		{name: "nothing registered (a device provisioned by an older server)", version: 9, root: root1, view: &manifestView{}},
		{name: "not yet upgraded", version: 1, root: root1, upgrade: 2},
		{name: "pinned", version: 1, root: root1, pinned: 1},
		{name: "downgrade below what it ran", version: 1, running: 2, root: root1, reason: ReasonWrongManifest},
		{name: "unregistered version", version: 3, root: root1, reason: ReasonWrongManifest},
		{name: "wrong root", version: 2, root: root1, reason: ReasonWrongManifest},
		{name: "other product", version: 2, root: root2, product: "q", reason: ReasonWrongManifest},
	} {
		d := row(store.StateTrusted)
		d.RunningVersion, d.PinnedVersion = c.running, c.pinned
		product := "p"
		if c.product != "" {
			product = c.product
		}
		v := view
		if c.view != nil {
			v = *c.view
		}
		up, re := checkManifest(d, &wire.Report{Man: wire.ManifestRef{Product: product, Version: c.version, Root: c.root}}, v)
		got, upv := "", uint64(0)
		if re != nil {
			got = re.Reason
		}
		if up != nil {
			upv = up.Version
		}
		if got != c.reason || upv != c.upgrade {
			t.Errorf("%s: reason %q upgrade %d", c.name, got, upv)
		}
	}
}
