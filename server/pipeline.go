package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
// sealed ack to send back. Every transport is an adapter in front of it (server/httpapi,
// server/mqttingest, server/lpwan for server/lorawan). On rejection err is a *RejectError
// whose Reason is the stable name; when the device can be told (the report was
// authentic), ack is also set and carries Reject = reason.
//
// The orchestration, in order: decode with limits → lock the device → MAC → admit (epoch,
// retransmission, replay, nonce) → manifest → FS-chain segment → evaluate (evaluate.go:
// pure) → seal the ack → durable commit (compare-and-set) → refresh the cache.
func (s *Server) HandleReport(ctx context.Context, data []byte) (ack []byte, err error) {
	if !s.enter() {
		return nil, reject(ReasonUnavailable, "server is shutting down")
	}
	defer s.inflight.Done()
	recv := time.Now()
	var re *RejectError
	for attempt := 0; ; attempt++ {
		ack, re = s.handle(ctx, data)
		if re != nil && re.Reason == ReasonConflict && attempt < 2 {
			continue // another replica moved the device: reloaded, verify again
		}
		break
	}
	if re != nil {
		err = re
	}
	s.met.observe(err, recv)
	if err == nil {
		s.met.latency.Observe(time.Since(recv).Seconds())
	}
	return ack, err
}

// handle is one attempt at a report: the ack to send (also on an authentic rejection)
// and the rejection, if any.
func (s *Server) handle(ctx context.Context, data []byte) ([]byte, *RejectError) {
	if len(data) > wire.MaxMessageSize {
		return nil, s.refuse(ctx, "", reject(ReasonOversize, "%d bytes, limit %d", len(data), wire.MaxMessageSize))
	}
	m, err := wire.ParseReport(data)
	if err != nil {
		return nil, s.refuse(ctx, "", wireReject(err))
	}
	dev := string(m.Kid)
	if !wire.ValidDeviceID(dev) {
		return nil, s.refuse(ctx, "", reject(ReasonMalformed, "kid is not a device id"))
	}
	ds, err := s.devs.lock(ctx, dev, s)
	if err != nil {
		return nil, reject(ReasonUnavailable, "store: %v", err)
	}
	defer ds.mu.Unlock()
	if ds.d == nil {
		return nil, s.refuse(ctx, dev, reject(ReasonUnknownDevice, "no device %q", dev))
	}
	d := ds.d
	r, err := wire.OpenReportWith(m, ds.uplink(d.UplinkKey))
	if err != nil {
		return nil, s.refuse(ctx, dev, wireReject(err)) // not authentic: record it, change nothing (S2)
	}
	now := s.now()
	sum := sha256.Sum256(data)
	if retransmission, re := admit(d, r, sum[:]); retransmission {
		return d.LastAck, nil // the same answer again, nothing changes
	} else if re != nil {
		return s.rejectAuthentic(ctx, ds, r, now, re)
	}
	view, re := s.manifestView(ctx, d, r.Man.Version)
	if re != nil {
		return nil, re
	}
	upgrade, re := checkManifest(d, r, view)
	if re != nil {
		return s.rejectAuthentic(ctx, ds, r, now, re)
	}
	from := fschain.Anchor{Dev: d.ID, Epoch: d.Epoch, N: d.AnchorN}
	copy(from.Head[:], d.AnchorHead)
	copy(from.NextKey[:], d.AnchorKey)
	// VerifyChunk is Verify, plus chunks: a backlog bigger than one message arrives as
	// segments that stop short of the claimed n (docs/PROTOCOL.md, "Backlog in chunks").
	chain, err := fschain.VerifyChunk(from, r.Log, s.headAt(ctx, d))
	if err != nil {
		var ve *fschain.VerifyError
		if !errors.As(err, &ve) {
			ve = &fschain.VerifyError{Name: fschain.NameHeadMismatch, Detail: err.Error()}
		}
		return s.rejectAuthentic(ctx, ds, r, now, &RejectError{Reason: ve.Name, Detail: ve.Error()})
	}
	in, re := s.gather(ctx, ds, r, sum[:], from, chain, upgrade, view, now)
	if re != nil {
		return nil, re
	}
	out := evaluate(in)
	ack, re := s.sealAndCommit(ctx, ds, &out)
	if re != nil {
		return nil, re
	}
	if ds.explainedKnown { // else in.Explained held only this report's entries
		ds.explained = out.Explained
	}
	if out.Transitioned {
		s.log.Info("device state", "dev", d.ID, "from", d.State, "to", out.Device.State, "reason", out.Device.StateReason)
	}
	return ack, nil
}

// gather assembles what evaluate looks at: besides the verified segment, each fresh
// entry's payload decoded once (evaluation, the stored event and the evidence all use
// that one decode), the tokens the entries name, the latched flags stored entries already
// explain, the manifest's report interval, and the randomness evaluation may need.
func (s *Server) gather(ctx context.Context, ds *devState, r *wire.Report, reportHash []byte, from fschain.Anchor, chain fschain.Verified,
	upgrade *store.Manifest, view manifestView, now time.Time) (*evalInput, *RejectError) {
	d := ds.d
	in := &evalInput{Dev: d, Report: r, ReportHash: reportHash, From: from, Chain: chain, Pending: ds.tokens,
		Upgrade: upgrade, Now: now, ReceiptInterval: s.cfg.ReceiptInterval, Nonce: randomBytes(16), TokenID: randomBytes(16)}
	if m := view.Versions[r.Man.Version]; m != nil {
		in.Interval = m.ReportInterval
	}
	in.Receipt.N, in.Receipt.Time, in.Receipt.OK = ds.receiptInfo(d.Receipt)
	in.Payloads = make([]any, len(chain.Fresh))
	for i, e := range chain.Fresh {
		if p, err := wire.DecodePayload(e.Type, e.Payload); err == nil {
			in.Payloads[i] = p
		}
	}
	in.Named = s.namedTokens(ctx, ds.tokens, in.Payloads)
	if ds.explainedKnown || r.State&latchFlags != 0 { // the store is read only when a flag needs explaining
		var err error
		if in.Explained, err = s.explainedFlags(ctx, ds); err != nil {
			return nil, reject(ReasonUnavailable, "store: %v", err)
		}
	}
	return in, nil
}

// sealAndCommit signs the receipt evaluation asked for, seals the ack, and commits the
// outcome; the ack goes out only once the commit is durable.
func (s *Server) sealAndCommit(ctx context.Context, ds *devState, out *outcome) ([]byte, *RejectError) {
	if out.SignReceipt != nil {
		out.Device.Receipt = wire.SignReceipt(out.SignReceipt, s.priv)
		out.Ack.Receipt = out.Device.Receipt
	}
	ack, err := wire.SealAckWith(out.Ack, ds.downlink(ds.d.DownlinkKey))
	if err != nil {
		return nil, reject(ReasonUnavailable, "seal ack: %v", err)
	}
	out.Device.LastAck = ack
	if err := s.apply(ctx, ds, out.Change); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, reject(ReasonConflict, "%v", err)
		}
		return nil, reject(ReasonUnavailable, "commit: %v", err)
	}
	return ack, nil
}

// apply commits a change to a locked device and refreshes the cache: the one place a
// device's cached row, tokens and alerts follow a commit. A lost compare-and-set
// reloads the row (another replica moved the device).
func (s *Server) apply(ctx context.Context, ds *devState, ch *store.Change) error {
	if err := s.commit.submit(ctx, ch); err != nil {
		if ch.Device != nil {
			ds.loaded = false
			s.devs.load(ctx, ds, ch.Device.ID, s)
		}
		return err
	}
	if ch.Device != nil {
		if !ch.Create {
			ch.Device.Version++
		} else {
			ch.Device.Version = 1
		}
		ds.d = ch.Device
	}
	applyTokenChanges(ds, ch)
	for _, a := range ch.Alerts {
		s.alerts.deliver(a) // after the commit: alerts are stored before they are sent
	}
	return nil
}

// headAt answers fschain's question "what is the stored head of entry n" for resent entries.
func (s *Server) headAt(ctx context.Context, d *store.Device) func(n uint64) (fschain.Hash, bool) {
	return func(n uint64) (fschain.Hash, bool) {
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
}

// manifestView gathers what checkManifest needs: the product's manifests, reloaded when
// the device runs a version this replica has not seen, and its pinned version if another
// replica registered it.
func (s *Server) manifestView(ctx context.Context, d *store.Device, running uint64) (manifestView, *RejectError) {
	_, vs, cur, err := s.mans.lookup(ctx, d.Product, running)
	if err == nil && d.PinnedVersion != 0 && vs[d.PinnedVersion] == nil && len(vs) > 0 {
		_, vs, cur, err = s.mans.lookup(ctx, d.Product, d.PinnedVersion)
	}
	if err != nil {
		return manifestView{}, reject(ReasonUnavailable, "manifests: %v", err)
	}
	return manifestView{Versions: vs, Current: cur}, nil
}

// namedTokens looks up the tokens fresh entries name that are not pending in the cache
// (issued on another replica, or used, expired, another device's: evaluation decides).
func (s *Server) namedTokens(ctx context.Context, pending []store.Token, payloads []any) []store.Token {
	var out []store.Token
	for _, p := range payloads {
		var id []byte
		switch p := p.(type) {
		case *wire.ServiceBeginPayload:
			id = p.TokenID
		case *wire.TamperClearedPayload:
			id = p.TokenID
		default:
			continue
		}
		known := false
		for _, t := range pending {
			known = known || string(t.ID) == string(id)
		}
		if known || len(id) == 0 {
			continue
		}
		if t, err := s.st.GetToken(ctx, id); err == nil {
			out = append(out, *t)
		}
	}
	return out
}

// explainedFlags returns the latched report flags the device's stored entries explain
// since its last tamper-cleared entry: read from the store once per cache load, then
// kept current by each accepted report.
func (s *Server) explainedFlags(ctx context.Context, ds *devState) (uint32, error) {
	if ds.explainedKnown {
		return ds.explained, nil
	}
	var f uint32
	after := uint64(0)
	for {
		page, err := s.st.ListEvents(ctx, store.Page{Dev: ds.d.ID, AfterN: after, Limit: 1000})
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			if e.Epoch != ds.d.Epoch {
				continue
			}
			if e.Type == wire.EntryTamperCleared {
				f = 0
			}
			f |= latchedBy(e.Type)
			after = e.N
		}
		if len(page) < 1000 {
			break
		}
	}
	ds.explained, ds.explainedKnown = f, true
	return f, nil
}

// refuse records a rejection of an unauthenticated report: an audit record and a
// counter, nothing else (S2, S8).
func (s *Server) refuse(ctx context.Context, dev string, re *RejectError) *RejectError {
	if !s.recordLimit.Allow() {
		// A flood of garbage: count it, do not let it fill the disk or the commit queue.
		s.met.unrecorded.Inc()
		return re
	}
	detail, _ := json.Marshal(map[string]string{"detail": re.Detail})
	ch := &store.Change{Audits: []store.Audit{{At: s.now(), Actor: "pipeline", Kind: "rejection", Dev: dev, Reason: re.Reason, Detail: string(detail)}}}
	if err := s.commit.submit(ctx, ch); err != nil {
		s.log.Warn("recording rejection", "dev", dev, "err", err)
	}
	s.log.Debug("report rejected", "dev", dev, "reason", re.Reason, "detail", re.Detail)
	return re
}

// RefuseFrame records the refusal of an unauthenticated frame of another transport (the
// LPWAN profile's) as the pipeline records its own (audit record, rate-limited; metrics)
// and returns the rejection.
func (s *Server) RefuseFrame(ctx context.Context, dev, reason, detail string) *RejectError {
	re := s.refuse(ctx, dev, &RejectError{Reason: reason, Detail: detail})
	s.met.observe(re, time.Now())
	return re
}

// Manifest is the registered manifest of product at version (through the manifest cache).
func (s *Server) Manifest(ctx context.Context, product string, version uint64) (*store.Manifest, error) {
	m, _, _, err := s.mans.lookup(ctx, product, version)
	if err == nil && m == nil {
		err = store.ErrNotFound
	}
	return m, err
}

// rejectAuthentic records the rejection of an authentic report (rejection, evaluate.go)
// and returns the sealed ack that tells the device why.
func (s *Server) rejectAuthentic(ctx context.Context, ds *devState, r *wire.Report, now time.Time, re *RejectError) ([]byte, *RejectError) {
	d := ds.d
	out := rejection(rejectInput{Dev: d, Report: r, Reject: re, Receipt: ds.receiptFor(d), LastAlert: ds.replayAlert, Now: now})
	var ack []byte
	if out.Ack != nil {
		if b, err := wire.SealAckWith(out.Ack, ds.downlink(d.DownlinkKey)); err == nil {
			ack = b
		}
	}
	if err := s.apply(ctx, ds, out.Change); err != nil && !errors.Is(err, store.ErrConflict) {
		s.log.Warn("recording rejection", "dev", d.ID, "err", err)
	} else if err == nil && out.ReplayAlert {
		ds.replayAlert = now
	}
	s.log.Info("report rejected", "dev", d.ID, "reason", re.Reason, "detail", re.Detail)
	return ack, re
}

// newToken creates a command token for the device (a fresh random id) and adds it to ch.
func newToken(d *store.Device, action string, args wire.TokenArgs, now time.Time, valid time.Duration, ch *store.Change) (*store.Token, error) {
	return issueToken(d, randomBytes(16), action, args, now, valid, ch)
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

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func hexID(b []byte) string { return hex.EncodeToString(b) }
