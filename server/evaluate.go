package server

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// The evaluation core: what an authentic report does to its device, as pure functions of
// what the orchestrator (pipeline.go) gathered — the stored row, the pending tokens, a view
// of the product's manifests, the verified segment and the time. Nothing here reads the
// store, the cache or a clock, draws randomness, signs or commits: the functions return
// the new row, the records, the transitions, the tokens to send and the ack (or the reason
// for a rejection), and the orchestrator seals and commits them. The state machine is
// therefore tested table by table without a server (evaluate_test.go).

// manifestView is what evaluation may know of the product's registered manifests.
type manifestView struct {
	Versions map[uint64]*store.Manifest // by version; empty: nothing registered (see checkManifest)
	Current  uint64                     // highest registered version
}

// admit runs the checks of an authentic report that come before its manifest and log:
// epoch, exact retransmission (answered with the stored ack, nothing changes), replay,
// nonce freshness.
func admit(d *store.Device, r *wire.Report, reportHash []byte) (retransmission bool, re *RejectError) {
	switch {
	case r.Epoch != d.Epoch:
		return false, reject(ReasonWrongEpoch, "report epoch %d, device epoch %d", r.Epoch, d.Epoch)
	case r.RSeq == d.LastRSeq && d.LastAck != nil && bytes.Equal(reportHash, d.LastReportHash):
		return true, nil
	case r.RSeq <= d.LastRSeq:
		return false, reject(ReasonReplay, "rseq %d, last accepted %d", r.RSeq, d.LastRSeq)
	case len(d.Nonce) > 0 && !bytes.Equal(r.Nonce, d.Nonce) && !bytes.Equal(r.Nonce, d.PrevNonce):
		return false, reject(ReasonStaleNonce, "nonce %x is not one the server sent last", r.Nonce)
	}
	return false, nil
}

// checkManifest compares what the device enforces with what it must run: the product's
// current manifest, or its pinned version. A device still on the version it last ran
// while a newer one waits to be installed is accepted, and upgrade is the manifest to
// send it (nil when the view does not hold it yet: it goes with a later ack).
func checkManifest(d *store.Device, r *wire.Report, v manifestView) (upgrade *store.Manifest, re *RejectError) {
	if r.Man.Product != d.Product {
		return nil, reject(ReasonWrongManifest, "device runs product %q, registered as %q", r.Man.Product, d.Product)
	}
	if len(v.Versions) == 0 {
		// Nothing registered for the product: nothing to compare with. The server provisions
		// no device of such a product (Provision), so only a device an older server
		// provisioned, or a report read before this replica saw the registration, gets here.
		return nil, nil
	}
	want := v.Current
	if d.PinnedVersion != 0 {
		want = d.PinnedVersion
	}
	m := v.Versions[r.Man.Version]
	switch {
	case m == nil:
		return nil, reject(ReasonWrongManifest, "version %d of %s is not registered", r.Man.Version, d.Product)
	case !bytes.Equal(m.Root, r.Man.Root):
		return nil, reject(ReasonWrongManifest, "root %x is not the root of %s version %d", r.Man.Root, d.Product, r.Man.Version)
	case r.Man.Version == want:
		return nil, nil
	case r.Man.Version < want && (d.RunningVersion == 0 || r.Man.Version >= d.RunningVersion):
		// Not yet upgraded (never a downgrade below what it ran): accept, send the manifest.
		return v.Versions[want], nil
	default:
		return nil, reject(ReasonWrongManifest, "device runs version %d, must run %d", r.Man.Version, want)
	}
}

// evalInput is everything evaluate may look at.
type evalInput struct {
	Dev        *store.Device // the stored row; never modified
	Report     *wire.Report
	ReportHash []byte // SHA-256 of the encoded report
	From       fschain.Anchor
	Chain      fschain.Verified // the verified segment
	Payloads   []any            // the decoded payload of each Chain.Fresh entry (nil: undecodable)
	Pending    []store.Token    // the device's pending tokens, in the order they were issued
	Named      []store.Token    // other tokens the fresh entries name (used, expired, another device's…)
	Upgrade    *store.Manifest  // a manifest the device must be sent (checkManifest)
	Interval   uint32           // report interval of the manifest the device runs (0: unknown)
	Receipt    receiptView      // the device's stored receipt
	// Explained is the latched report flags that entries already stored explain (since
	// the last tamper-cleared); see latchedBy.
	Explained uint32
	Nonce     []byte    // the fresh nonce the ack will carry
	TokenID   []byte    // the id of a token this evaluation may issue (random, 16 bytes)
	Now       time.Time // server time of receipt
	// ReceiptInterval: see Config.ReceiptInterval.
	ReceiptInterval time.Duration
}

// receiptView is what the orchestrator decoded from the device's stored receipt.
type receiptView struct {
	N, Time uint64
	OK      bool
}

// outcome is what a report does.
type outcome struct {
	Device       *store.Device // the new row (also Change.Device)
	Change       *store.Change // records: events, audits, alerts, tokens issued and used
	Transitioned bool
	Ack          *wire.Ack     // to seal and send; Receipt unset when SignReceipt is set
	SignReceipt  *wire.Receipt // a receipt to sign, store in the row and put in the ack
	Explained    uint32        // latched flags explained after this report
	ReplayAlert  bool          // a replay alert was raised (rate limit, see rejection)
}

// defaultWindow is the service window of a token that names none.
const defaultWindow = 3600

// defaultInterval stands for a device's report interval when its manifest names none.
const defaultInterval = 900

// evaluate applies an accepted report: it stores the newly verified entries and applies
// what they and the report's MAC'd flags say to the device's state.
//
// A partial report (a chunk of a larger backlog, verified only up to its last entry)
// counts its tamper entries, but promotions (to trusted) wait for the chunk that reaches
// the claimed n, the only one whose head and seal are checked.
func evaluate(in *evalInput) outcome {
	d, r, now := in.Dev, in.Report, in.Now
	nd := d.Clone()
	ch := &store.Change{Device: nd, Was: d} // d is the stored row at nd.Version: write only what changes
	out := outcome{Device: nd, Change: ch}
	next := in.Chain.Anchor

	j := judge{in: in, nd: nd, ch: ch, evidence: map[string]any{"rseq": r.RSeq}, explained: in.Explained}
	for i := range in.Chain.Fresh {
		j.entry(&in.Chain.Fresh[i], in.Chain.Heads[i], in.Payloads[i])
	}
	j.flags()
	out.Explained = j.explained
	out.Transitioned = j.decide(in.Chain.Partial)

	nd.LastRSeq, nd.LastReportHash = r.RSeq, in.ReportHash
	nd.LastSeen, nd.LastDeviceTime, nd.LastBoot = now, r.Time, r.Boot
	nd.Rejections = 0
	if in.Chain.Partial {
		out.Transitioned = catchUp(nd, r, d.Rejections, in.From.N, next.N, len(in.Chain.Fresh), now, ch) || out.Transitioned
	}
	nd.RunningVersion = r.Man.Version
	if in.Interval > 0 {
		nd.ReportInterval = in.Interval // silence is judged by the policy the device runs
	}
	anchorMoved := next.N != d.AnchorN || !bytes.Equal(next.Head[:], d.AnchorHead)
	nd.AnchorN, nd.AnchorHead, nd.AnchorKey = next.N, append([]byte(nil), next.Head[:]...), append([]byte(nil), next.NextKey[:]...)

	// The ack carries a receipt only for the anchor it names (devices check that): a fresh
	// one when due, else the stored one if it is about this anchor, else none (the device
	// keeps its latest, which covers an earlier entry; see receiptDue).
	var receipt []byte
	if (anchorMoved || nd.Receipt == nil) && receiptDue(in, out.Transitioned, ch) {
		out.SignReceipt = &wire.Receipt{Dev: d.ID, Epoch: d.Epoch, N: next.N, Head: nd.AnchorHead, Time: uint64(now.Unix())}
	} else if in.Receipt.OK && in.Receipt.N == next.N {
		receipt = nd.Receipt
	}
	nd.PrevNonce, nd.Nonce = d.Nonce, in.Nonce

	if in.Upgrade != nil {
		if !slices.ContainsFunc(in.Pending, func(t store.Token) bool { return t.Action == wire.TokenManifest }) {
			issueToken(nd, in.TokenID, wire.TokenManifest, wire.TokenArgs{Manifest: in.Upgrade.Signed}, now, 7*24*time.Hour, ch)
		}
	} else {
		// Running what it must: a pending manifest token has done its job.
		for _, t := range in.Pending {
			if t.Action == wire.TokenManifest && !usedIn(ch, t.ID) {
				ch.UsedTokens = append(ch.UsedTokens, t.ID)
			}
		}
	}
	out.Ack = &wire.Ack{Dev: d.ID, Epoch: d.Epoch, AckedRSeq: r.RSeq, Nonce: in.Nonce,
		Anchor: wire.Anchor{N: next.N, Head: nd.AnchorHead}, Receipt: receipt, Commands: tokensToSend(in.Pending, ch, now)}
	return out
}

// receiptDue says whether an accepted report that moves the anchor gets a freshly signed
// receipt (an Ed25519 signature, the largest CPU cost of a report). A receipt over a later
// head covers every earlier entry, because the head chain is unkeyed, so the server signs
// only when the device has none, the segment holds a tamper-class entry or changes the
// device's state, the report is the first of a boot, or the device's latest receipt is
// older than Config.ReceiptInterval of server time.
func receiptDue(in *evalInput, transitioned bool, ch *store.Change) bool {
	d := in.Dev
	if d.Receipt == nil || in.Report.Boot != d.LastBoot || transitioned || in.ReceiptInterval < 0 {
		return true
	}
	for _, e := range ch.Events {
		if e.Tamper {
			return true
		}
	}
	return !in.Receipt.OK || in.Now.Unix()-int64(in.Receipt.Time) >= int64(in.ReceiptInterval/time.Second)
}

// catchUp records a chunk of a backlog: verified up to to, the device claims r.Log.N. A
// chunk that moved nothing (resent after a lost ack) is fine once; several in a row mean
// the device is not sending the rest of its log, which is how a truncated tail would
// look, so they count as rejections do and end in suspect.
func catchUp(nd *store.Device, r *wire.Report, stalled uint32, from, to uint64, fresh int, now time.Time, ch *store.Change) bool {
	detail, _ := json.Marshal(map[string]any{"rseq": r.RSeq, "from": from, "to": to, "claimed": r.Log.N, "entries": fresh})
	ch.Audits = append(ch.Audits, store.Audit{At: now, Actor: "pipeline", Kind: "catch-up", Dev: nd.ID, Reason: "partial-segment", Detail: string(detail)})
	if fresh > 0 {
		return false
	}
	nd.Rejections = stalled + 1 // reports in a row that moved nothing (or were rejected)
	if nd.Rejections >= maxRejections {
		return transition(nd, store.StateSuspect, "catch-up-stalled", now, map[string]any{"anchor": to, "claimed": r.Log.N, "chunks": nd.Rejections}, ch)
	}
	return false
}

// rejectInput is everything rejection may look at.
type rejectInput struct {
	Dev       *store.Device
	Report    *wire.Report
	Reject    *RejectError
	Receipt   []byte    // the stored receipt if it is about the device's anchor, else nil
	LastAlert time.Time // when this device last raised a replay alert (zero: never)
	Now       time.Time
}

// replayAlertEvery bounds replay alerts to one per device per period (S12).
const replayAlertEvery = time.Hour

// rejection is what the rejection of an authentic report does: a record, an ack that
// tells the device why (anchor and nonce unchanged, so it can resynchronise) and the
// rejection counter. Chain failures that prove tampering (forged-entry, bad-seal,
// rollback, fork) make it tampered; gap, reorder and head-mismatch, and repeated
// rejections, suspect.
//
// A replay (an authentic report at or below the last accepted rseq: anyone who captured
// one can resend it, no key needed) is counted and audited but moves nothing, not even
// the rejection counter, and raises at most one alert per device per replayAlertEvery
// (S12): otherwise resending old reports would be a lever to flip a device's state.
func rejection(in rejectInput) outcome {
	d, r, re, now := in.Dev, in.Report, in.Reject, in.Now
	detail, _ := json.Marshal(map[string]any{"detail": re.Detail, "rseq": r.RSeq, "epoch": r.Epoch})
	audit := store.Audit{At: now, Actor: "pipeline", Kind: "rejection", Dev: d.ID, Reason: re.Reason, Detail: string(detail)}
	var out outcome
	if re.Reason == ReasonReplay {
		out.Change = &store.Change{Audits: []store.Audit{audit}}
		if in.LastAlert.IsZero() || now.Sub(in.LastAlert) >= replayAlertEvery {
			out.Change.Alerts = []store.Alert{{At: now, Dev: d.ID, Kind: ReasonReplay, Reason: ReasonReplay, Detail: string(detail)}}
			out.ReplayAlert = true
		}
	} else {
		nd := d.Clone()
		nd.Rejections++
		ch := &store.Change{Device: nd, Was: d, Audits: []store.Audit{audit}}
		evidence := map[string]any{"rejection": re.Reason, "detail": re.Detail}
		switch {
		case tamperReasons[re.Reason]:
			out.Transitioned = transition(nd, store.StateTampered, re.Reason, now, evidence, ch)
		case suspectReasons[re.Reason]:
			out.Transitioned = transition(nd, store.StateSuspect, re.Reason, now, evidence, ch)
		case nd.Rejections >= maxRejections:
			out.Transitioned = transition(nd, store.StateSuspect, "repeated-rejections", now, map[string]any{"rejections": nd.Rejections, "last": re.Reason}, ch)
		}
		out.Device, out.Change = nd, ch
	}
	if r.Epoch == d.Epoch {
		out.Ack = &wire.Ack{Dev: d.ID, Epoch: d.Epoch, AckedRSeq: r.RSeq, Nonce: d.Nonce,
			Anchor: wire.Anchor{N: d.AnchorN, Head: d.AnchorHead}, Receipt: in.Receipt, Reject: re.Reason}
	}
	return out
}

// issueToken creates a command token for the device and adds it to ch.
func issueToken(d *store.Device, id []byte, action string, args wire.TokenArgs, now time.Time, valid time.Duration, ch *store.Change) (*store.Token, error) {
	t := &wire.Token{Dev: d.ID, Epoch: d.Epoch, ID: id, Action: action, UntilRSeq: d.LastRSeq + tokenLifetimeRSeq,
		Expires: uint64(now.Add(valid).Unix()), Args: args}
	sealed, err := wire.SealToken(t, d.DownlinkKey)
	if err != nil {
		return nil, err
	}
	st := store.Token{ID: id, Dev: d.ID, Epoch: d.Epoch, Action: action, Sealed: sealed, Issued: now, Expires: now.Add(valid), Window: args.Window}
	ch.Tokens = append(ch.Tokens, st)
	return &st, nil
}

// tokensToSend lists the tokens to deliver with this ack: pending, unexpired, not used by
// the entries just verified, plus those created in this change, within maxCommandBytes.
func tokensToSend(pending []store.Token, ch *store.Change, now time.Time) [][]byte {
	var out [][]byte
	size := 0
	for _, list := range [][]store.Token{pending, ch.Tokens} {
		for _, t := range list {
			if usedIn(ch, t.ID) || !t.Expires.After(now) || t.Used {
				continue
			}
			if size+len(t.Sealed) > maxCommandBytes {
				continue // the ack must stay under the message limit: the rest go next time
			}
			size += len(t.Sealed)
			out = append(out, t.Sealed)
		}
	}
	return out
}

func usedIn(ch *store.Change, id []byte) bool {
	return slices.ContainsFunc(ch.UsedTokens, func(u []byte) bool { return bytes.Equal(u, id) })
}
