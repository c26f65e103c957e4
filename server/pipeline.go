package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// tokenLifetimeRSeq is how many reports a command token stays valid for (UntilRSeq).
const tokenLifetimeRSeq = 1000

// maxCommandBytes bounds the tokens one ack carries, so it stays under wire.MaxMessageSize.
const maxCommandBytes = 12 << 10

// HandleReport runs the verification pipeline on one encoded report and returns the
// sealed ack to send back. Both transports use it. On rejection err is a *RejectError
// whose Reason is the stable name; when the device can be told (the report was
// authentic), ack is also set and carries Reject = reason.
//
// Order: decode with limits → device → MAC → epoch → rseq (an exact retransmission gets
// the same ack again) → nonce → manifest → FS-chain segment → state transition → durable
// commit (compare-and-set) → ack.
func (s *Server) HandleReport(ctx context.Context, data []byte) (ack []byte, err error) {
	if !s.enter() {
		return nil, reject(ReasonUnavailable, "server is shutting down")
	}
	defer s.inflight.Done()
	recv := time.Now()
	for attempt := 0; ; attempt++ {
		ack, err = s.handle(ctx, data, recv)
		var re *RejectError
		if errors.As(err, &re) && re.Reason == ReasonConflict && attempt < 2 {
			continue // another replica moved the device: reloaded, verify again
		}
		break
	}
	s.met.observe(err, recv)
	if err != nil {
		var re *RejectError
		if errors.As(err, &re) && re.ack != nil {
			return re.ack, err
		}
	}
	return ack, err
}

func (s *Server) handle(ctx context.Context, data []byte, recv time.Time) ([]byte, error) {
	if len(data) > wire.MaxMessageSize {
		return nil, s.rejectUnauth(ctx, "", reject(ReasonOversize, "%d bytes, limit %d", len(data), wire.MaxMessageSize))
	}
	m, err := wire.ParseReport(data)
	if err != nil {
		return nil, s.rejectUnauth(ctx, "", wireReject(err))
	}
	dev := string(m.Kid)
	if !wire.ValidDeviceID(dev) {
		return nil, s.rejectUnauth(ctx, "", reject(ReasonMalformed, "kid is not a device id"))
	}
	ds, err := s.devs.lock(ctx, dev, s)
	if err != nil {
		return nil, reject(ReasonUnavailable, "store: %v", err)
	}
	defer ds.mu.Unlock()
	if ds.d == nil {
		return nil, s.rejectUnauth(ctx, dev, reject(ReasonUnknownDevice, "no device %q", dev))
	}
	d := ds.d
	r, err := wire.OpenReportWith(m, ds.uplink(d.UplinkKey))
	if err != nil {
		// Not authentic: record it, change nothing (S2).
		return nil, s.rejectUnauth(ctx, dev, wireReject(err))
	}
	now := s.now()
	sum := sha256.Sum256(data)
	if r.Epoch != d.Epoch {
		return nil, s.rejectAuth(ctx, ds, r, now, reject(ReasonWrongEpoch, "report epoch %d, device epoch %d", r.Epoch, d.Epoch))
	}
	if r.RSeq == d.LastRSeq && d.LastAck != nil && bytes.Equal(sum[:], d.LastReportHash) {
		return d.LastAck, nil // exact retransmission: same answer, nothing changes
	}
	if r.RSeq <= d.LastRSeq {
		return nil, s.rejectAuth(ctx, ds, r, now, reject(ReasonReplay, "rseq %d, last accepted %d", r.RSeq, d.LastRSeq))
	}
	if len(d.Nonce) > 0 && !bytes.Equal(r.Nonce, d.Nonce) && !bytes.Equal(r.Nonce, d.PrevNonce) {
		return nil, s.rejectAuth(ctx, ds, r, now, reject(ReasonStaleNonce, "nonce %x is not one the server sent last", r.Nonce))
	}
	upgrade, err := s.checkManifest(ctx, d, r)
	if err != nil {
		return nil, s.rejectAuth(ctx, ds, r, now, err.(*RejectError))
	}
	anchor := fschain.Anchor{Dev: d.ID, Epoch: d.Epoch, N: d.AnchorN}
	copy(anchor.Head[:], d.AnchorHead)
	copy(anchor.NextKey[:], d.AnchorKey)
	headAt := func(n uint64) (fschain.Hash, bool) {
		var h fschain.Hash
		if n == 0 {
			return fschain.GenesisHead(d.ID, d.Epoch), true
		}
		b, err := s.st.EventHead(ctx, d.ID, d.Epoch, n)
		if err != nil || len(b) != len(h) {
			return h, false
		}
		copy(h[:], b)
		return h, true
	}
	// VerifyPrefix is Verify, plus chunks: a backlog bigger than one message arrives as
	// segments that stop short of the claimed n (docs/PROTOCOL.md, "Backlog in chunks").
	v, err := fschain.VerifyChunk(anchor, r.Log, headAt)
	if err != nil {
		var ve *fschain.VerifyError
		if !errors.As(err, &ve) {
			ve = &fschain.VerifyError{Name: fschain.NameHeadMismatch, Detail: err.Error()}
		}
		return nil, s.rejectAuth(ctx, ds, r, now, &RejectError{Reason: ve.Name, Detail: ve.Error()})
	}

	// Accepted: build the new row, the records and the ack.
	nd := d.Clone()
	ch := &store.Change{Device: nd, Was: d} // d is the stored row at nd.Version: write only what changes
	next, fresh, partial := v.Anchor, v.Fresh, v.Partial
	ev := s.evaluate(ctx, ds, nd, r, fresh, v.Heads, anchor, partial, now, ch)
	nd.LastRSeq, nd.LastReportHash = r.RSeq, sum[:]
	nd.LastSeen, nd.LastDeviceTime, nd.LastBoot = now, r.Time, r.Boot
	nd.Rejections = 0
	if partial {
		s.catchUp(nd, r, d.Rejections, anchor.N, next.N, len(fresh), now, ch)
	}
	nd.RunningVersion = r.Man.Version
	if iv := s.reportInterval(ctx, d.Product, r.Man.Version); iv > 0 {
		nd.ReportInterval = iv // silence is judged by the policy the device runs
	}
	anchorMoved := next.N != d.AnchorN || !bytes.Equal(next.Head[:], d.AnchorHead)
	nd.AnchorN, nd.AnchorHead, nd.AnchorKey = next.N, append([]byte(nil), next.Head[:]...), append([]byte(nil), next.NextKey[:]...)
	// The ack carries a receipt only for the anchor it names (devices check that): a fresh
	// one when due, else the stored one if it is about this anchor, else none (the device
	// keeps its latest, which covers an earlier entry; see receiptDue).
	var receipt []byte
	if (anchorMoved || nd.Receipt == nil) && s.receiptDue(ds, d, r, ch, ev, now) {
		nd.Receipt = wire.SignReceipt(&wire.Receipt{Dev: d.ID, Epoch: d.Epoch, N: next.N, Head: nd.AnchorHead, Time: uint64(now.Unix())}, s.priv)
		receipt = nd.Receipt
	} else if n, _, ok := ds.receiptInfo(nd.Receipt); ok && n == next.N {
		receipt = nd.Receipt
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	nd.PrevNonce, nd.Nonce = d.Nonce, nonce
	if upgrade != nil {
		if err := s.queueManifestToken(nd, ds, upgrade, now, ch); err != nil {
			s.log.Warn("manifest token", "dev", d.ID, "err", err)
		}
	} else {
		// Running what it must: a pending manifest token has done its job.
		for _, t := range ds.tokens {
			if t.Action == wire.TokenManifest && !slices.ContainsFunc(ch.UsedTokens, func(id []byte) bool { return bytes.Equal(id, t.ID) }) {
				ch.UsedTokens = append(ch.UsedTokens, t.ID)
			}
		}
	}
	tokens := pendingSealed(ds, ch, now)
	a := &wire.Ack{Dev: d.ID, Epoch: d.Epoch, AckedRSeq: r.RSeq, Nonce: nonce,
		Anchor: wire.Anchor{N: next.N, Head: nd.AnchorHead}, Receipt: receipt, Commands: tokens}
	ackBytes, err := wire.SealAckWith(a, ds.downlink(d.DownlinkKey))
	if err != nil {
		return nil, reject(ReasonUnavailable, "seal ack: %v", err)
	}
	nd.LastAck = ackBytes
	if err := s.commit.submit(ctx, ch, recv); err != nil {
		if errors.Is(err, store.ErrConflict) {
			ds.loaded = false
			s.devs.load(ctx, ds, d.ID, s)
			return nil, reject(ReasonConflict, "%v", err)
		}
		return nil, reject(ReasonUnavailable, "commit: %v", err)
	}
	nd.Version++
	ds.d = nd
	applyTokenChanges(ds, ch)
	s.afterCommit(ch)
	if ev.transitioned {
		s.log.Info("device state", "dev", d.ID, "from", d.State, "to", nd.State, "reason", nd.StateReason)
	}
	return ackBytes, nil
}

// receiptDue says whether an accepted report that moves the anchor gets a freshly signed
// receipt (an Ed25519 signature, the largest CPU cost of a report). A receipt over a later
// head covers every earlier entry, because the head chain is unkeyed, so the server signs
// only when the device has none, the segment holds a tamper-class entry or changes the
// device's state, the report is the first of a boot, or the device's latest receipt is
// older than Config.ReceiptInterval of server time.
func (s *Server) receiptDue(ds *devState, d *store.Device, r *wire.Report, ch *store.Change, ev evaluation, now time.Time) bool {
	if d.Receipt == nil || r.Boot != d.LastBoot || ev.transitioned || s.cfg.ReceiptInterval < 0 {
		return true
	}
	for _, e := range ch.Events {
		if e.Tamper {
			return true
		}
	}
	_, t, ok := ds.receiptInfo(d.Receipt)
	return !ok || now.Unix()-int64(t) >= int64(s.cfg.ReceiptInterval/time.Second)
}

// catchUp records a chunk of a backlog: verified up to to, the device claims r.Log.N. A
// chunk that moved nothing (resent after a lost ack) is fine once; several in a row mean
// the device is not sending the rest of its log, which is how a truncated tail would
// look, so they count as rejections do and end in suspect.
func (s *Server) catchUp(nd *store.Device, r *wire.Report, stalled uint32, from, to uint64, fresh int, now time.Time, ch *store.Change) {
	detail, _ := json.Marshal(map[string]any{"rseq": r.RSeq, "from": from, "to": to, "claimed": r.Log.N, "entries": fresh})
	ch.Audits = append(ch.Audits, store.Audit{At: now, Actor: "pipeline", Kind: "catch-up", Dev: nd.ID, Reason: "partial-segment", Detail: string(detail)})
	if fresh > 0 {
		return
	}
	nd.Rejections = stalled + 1 // reports in a row that moved nothing (or were rejected)
	if nd.Rejections >= maxRejections {
		s.transition(nd, store.StateSuspect, "catch-up-stalled", now, map[string]any{"anchor": to, "claimed": r.Log.N, "chunks": nd.Rejections}, ch)
	}
}

// rejectUnauth records a rejection of an unauthenticated report: an audit record and a
// counter, nothing else (S2, S8).
func (s *Server) rejectUnauth(ctx context.Context, dev string, re *RejectError) error {
	if !s.recordLimit.Allow() {
		// A flood of garbage: count it, do not let it fill the disk or the commit queue.
		s.met.unrecorded.Inc()
		return re
	}
	detail, _ := json.Marshal(map[string]string{"detail": re.Detail})
	ch := &store.Change{Audits: []store.Audit{{At: s.now(), Actor: "pipeline", Kind: "rejection", Dev: dev, Reason: re.Reason, Detail: string(detail)}}}
	if err := s.commit.submit(ctx, ch, time.Time{}); err != nil {
		s.log.Warn("recording rejection", "err", err)
	}
	s.log.Debug("report rejected", "dev", dev, "reason", re.Reason, "detail", re.Detail)
	return re
}

// rejectAuth records a rejection of an authentic report and answers the device with an
// ack carrying the reason (anchor and nonce unchanged, so it can resynchronise). Only
// the rejection counter moves, except for chain failures that prove tampering
// (forged-entry, bad-seal, rollback, fork → tampered; gap, reorder, head-mismatch →
// suspect) and repeated rejections (→ suspect).
func (s *Server) rejectAuth(ctx context.Context, ds *devState, r *wire.Report, now time.Time, re *RejectError) error {
	d := ds.d
	nd := d.Clone()
	nd.Rejections++
	detail, _ := json.Marshal(map[string]any{"detail": re.Detail, "rseq": r.RSeq, "epoch": r.Epoch})
	ch := &store.Change{Device: nd, Was: d, Audits: []store.Audit{{At: now, Actor: "pipeline", Kind: "rejection", Dev: d.ID, Reason: re.Reason, Detail: string(detail)}}}
	switch {
	case tamperReasons[re.Reason]:
		s.transition(nd, store.StateTampered, re.Reason, now, map[string]any{"rejection": re.Reason, "detail": re.Detail}, ch)
	case suspectReasons[re.Reason]:
		s.transition(nd, store.StateSuspect, re.Reason, now, map[string]any{"rejection": re.Reason, "detail": re.Detail}, ch)
	case nd.Rejections >= maxRejections:
		s.transition(nd, store.StateSuspect, "repeated-rejections", now, map[string]any{"rejections": nd.Rejections, "last": re.Reason}, ch)
	}
	if re.Reason == ReasonReplay {
		ch.Alerts = append(ch.Alerts, store.Alert{At: now, Dev: d.ID, Kind: ReasonReplay, Reason: ReasonReplay, Detail: string(detail)})
	}
	if r.Epoch == d.Epoch {
		a := &wire.Ack{Dev: d.ID, Epoch: d.Epoch, AckedRSeq: r.RSeq, Nonce: d.Nonce,
			Anchor: wire.Anchor{N: d.AnchorN, Head: d.AnchorHead}, Receipt: ds.receiptFor(d), Reject: re.Reason}
		if b, err := wire.SealAckWith(a, ds.downlink(d.DownlinkKey)); err == nil {
			re.ack = b
		}
	}
	err := s.commit.submit(ctx, ch, time.Time{})
	switch {
	case err == nil:
		nd.Version++
		ds.d = nd
		s.afterCommit(ch)
	case errors.Is(err, store.ErrConflict):
		ds.loaded = false
		s.devs.load(ctx, ds, d.ID, s)
	default:
		s.log.Warn("recording rejection", "dev", d.ID, "err", err)
	}
	s.log.Info("report rejected", "dev", d.ID, "reason", re.Reason, "detail", re.Detail)
	return re
}

// checkManifest compares what the device enforces with what it must run: the product's
// current manifest, or its pinned version. A device still on the version it last ran
// while a newer one waits to be installed is accepted and sent a manifest token.
func (s *Server) checkManifest(ctx context.Context, d *store.Device, r *wire.Report) (upgrade *store.Manifest, err error) {
	if r.Man.Product != d.Product {
		return nil, reject(ReasonWrongManifest, "device runs product %q, registered as %q", r.Man.Product, d.Product)
	}
	// A version this replica does not know (or above its current one) may have been
	// registered on another replica: lookup reloads from the store before we reject.
	m, vs, cur, err := s.mans.lookup(ctx, d.Product, r.Man.Version)
	if err != nil {
		return nil, reject(ReasonUnavailable, "manifests: %v", err)
	}
	if len(vs) == 0 {
		return nil, nil // nothing registered for the product yet: nothing to compare with
	}
	want := cur
	if d.PinnedVersion != 0 {
		want = d.PinnedVersion
	}
	if m == nil {
		return nil, reject(ReasonWrongManifest, "version %d of %s is not registered", r.Man.Version, d.Product)
	}
	if !bytes.Equal(m.Root, r.Man.Root) {
		return nil, reject(ReasonWrongManifest, "root %x is not the root of %s version %d", r.Man.Root, d.Product, r.Man.Version)
	}
	switch {
	case r.Man.Version == want:
		return nil, nil
	case r.Man.Version < want && (d.RunningVersion == 0 || r.Man.Version >= d.RunningVersion):
		// Not yet upgraded (never a downgrade below what it ran): accept, send the manifest.
		up := vs[want]
		if up == nil { // pinned (on another replica) to a version this one has not seen
			if up, _, _, err = s.mans.lookup(ctx, d.Product, want); err != nil {
				return nil, reject(ReasonUnavailable, "manifests: %v", err)
			}
		}
		return up, nil
	default:
		return nil, reject(ReasonWrongManifest, "device runs version %d, must run %d", r.Man.Version, want)
	}
}

func (s *Server) queueManifestToken(nd *store.Device, ds *devState, m *store.Manifest, now time.Time, ch *store.Change) error {
	for _, t := range ds.tokens {
		if t.Action == wire.TokenManifest {
			return nil // one is pending already
		}
	}
	_, err := s.newToken(nd, wire.TokenManifest, wire.TokenArgs{Manifest: m.Signed}, now, 7*24*time.Hour, ch)
	return err
}

// newToken creates a command token for the device and adds it to ch.
func (s *Server) newToken(d *store.Device, action string, args wire.TokenArgs, now time.Time, valid time.Duration, ch *store.Change) (*store.Token, error) {
	id := make([]byte, 16)
	rand.Read(id)
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

// pendingSealed lists the tokens to deliver with this ack: pending, unexpired, not used
// by the entries just verified, plus those created in this change.
func pendingSealed(ds *devState, ch *store.Change, now time.Time) [][]byte {
	used := map[string]bool{}
	for _, id := range ch.UsedTokens {
		used[string(id)] = true
	}
	var out [][]byte
	size := 0
	for _, t := range append(append([]store.Token(nil), ds.tokens...), ch.Tokens...) {
		if !used[string(t.ID)] && t.Expires.After(now) && !t.Used {
			if size+len(t.Sealed) > maxCommandBytes {
				continue // the ack must stay under the message limit: the rest go next time
			}
			size += len(t.Sealed)
			out = append(out, t.Sealed)
		}
	}
	return out
}

// applyTokenChanges updates the cached pending tokens after a commit.
func applyTokenChanges(ds *devState, ch *store.Change) {
	if len(ch.Tokens) == 0 && len(ch.UsedTokens) == 0 {
		return
	}
	used := map[string]bool{}
	for _, id := range ch.UsedTokens {
		used[string(id)] = true
	}
	var keep []store.Token
	for _, t := range append(ds.tokens, ch.Tokens...) {
		if !used[string(t.ID)] {
			keep = append(keep, t)
		}
	}
	ds.tokens = keep
}

// afterCommit delivers what must follow a durable change: alerts to the log and webhooks.
func (s *Server) afterCommit(ch *store.Change) {
	for _, a := range ch.Alerts {
		s.alerts.deliver(a)
	}
}

func hexID(b []byte) string { return hex.EncodeToString(b) }

func errDetail(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// reportInterval is the report interval of a registered manifest's policy (0 if unknown).
func (s *Server) reportInterval(ctx context.Context, product string, version uint64) uint32 {
	vs, _, err := s.mans.product(ctx, product)
	if err != nil {
		return 0
	}
	if m, ok := vs[version]; ok {
		return m.ReportInterval
	}
	return 0
}
