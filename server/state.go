package server

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// The device state machine:
//
//	provisioned → trusted                  first accepted report
//	* → tampered                           code mismatch, tamper entry (cover opened outside a
//	                                       service window, check-fail, refused, erased, magnet),
//	                                       forged-entry, bad-seal, rollback, fork. Sticky: only an
//	                                       operator closes it, with an inspection result.
//	* → suspect                            gap, reorder, head-mismatch, clock going backwards,
//	                                       overflow, bad-downlink, token replay, repeated rejections
//	* → silent                             no report for SilentAfter × report interval (timer)
//	* → service                            service token issued (window open)
//	suspect/silent/service → trusted       a clean accepted report (silent: log continuity
//	                                       verified by the chain), service-end, or visit closed
//
// Every transition is an audit record with its evidence; entering tampered, suspect or
// silent also raises an alert.

var stateRank = map[string]int{
	store.StateProvisioned: 0, store.StateTrusted: 0, store.StateService: 1, store.StateSilent: 2,
	store.StateSuspect: 3, store.StateTampered: 4,
}

// transition moves nd to state (unless a stickier state holds) and records it in ch.
func (s *Server) transition(nd *store.Device, state, reason string, now time.Time, evidence map[string]any, ch *store.Change) bool {
	if nd.State == state && nd.StateReason == reason {
		return false
	}
	if nd.State == store.StateTampered && state != store.StateTampered {
		return false // sticky until an operator closes it
	}
	if nd.State == state && stateRank[state] >= stateRank[store.StateSuspect] {
		// already there: record the further evidence, no new transition
		ev, _ := json.Marshal(evidence)
		ch.Audits = append(ch.Audits, store.Audit{At: now, Actor: "pipeline", Kind: "evidence", Dev: nd.ID, Reason: reason, Detail: string(ev)})
		return false
	}
	from := nd.State
	if evidence == nil {
		evidence = map[string]any{}
	}
	evidence["from"], evidence["to"] = from, state
	ev, _ := json.Marshal(evidence)
	nd.State, nd.StateReason, nd.StateSince = state, reason, now
	ch.Audits = append(ch.Audits, store.Audit{At: now, Actor: "pipeline", Kind: "transition", Dev: nd.ID, Reason: reason, Detail: string(ev)})
	if state == store.StateTampered || state == store.StateSuspect || state == store.StateSilent {
		ch.Alerts = append(ch.Alerts, store.Alert{At: now, Dev: nd.ID, Kind: state, Reason: reason, Detail: string(ev)})
	}
	return true
}

type evaluation struct{ transitioned bool }

// evaluate stores the newly verified entries and applies what they and the report's
// flags say to the device's state.
// partial: the report is a chunk of a larger backlog, verified only up to its last entry;
// its tamper entries count, but promotions (to trusted) wait for the chunk that reaches
// the claimed n, the only one whose head and seal are checked.
func (s *Server) evaluate(ctx context.Context, ds *devState, nd *store.Device, r *wire.Report, fresh []wire.Entry, heads []fschain.Hash, from fschain.Anchor, partial bool, now time.Time, ch *store.Change) evaluation {
	var ev evaluation
	tampered, suspect := "", ""
	evidence := map[string]any{"rseq": r.RSeq}
	var tamperEntries []map[string]any
	for i := range fresh {
		e := &fresh[i]
		rec := store.Event{Dev: nd.ID, Epoch: nd.Epoch, N: e.N, T: e.T, Type: e.Type, Tamper: wire.IsTamper(e.Type),
			Payload: e.Payload, Tag: e.Tag, Head: append([]byte(nil), heads[i][:]...), Received: now}
		dec, decErr := wire.DecodePayload(e.Type, e.Payload) // the one decode of this entry
		if decErr != nil {
			dec = nil
		}
		if dec != nil && (rec.Tamper || e.Type == wire.EntryServiceBegin || e.Type == wire.EntryServiceEnd || e.Type == wire.EntryTamperCleared) {
			b, _ := json.Marshal(dec)
			rec.Decoded = string(b)
		}
		ch.Events = append(ch.Events, rec)
		switch e.Type {
		case wire.EntryServiceBegin:
			p, ok := dec.(*wire.ServiceBeginPayload)
			if !ok {
				p = &wire.ServiceBeginPayload{}
			}
			if !ok || !s.useToken(ctx, ds, nd, p.TokenID, wire.TokenService, now, ch) {
				suspect = "token-replay"
				evidence["token"] = hexID(p.TokenID)
				evidence["entry"] = e.N
				continue
			}
			win := uint64(3600)
			for _, t := range ds.tokens {
				if bytes.Equal(t.ID, p.TokenID) && t.Window > 0 {
					win = uint64(t.Window)
				}
			}
			nd.WindowUntil = e.T + win
		case wire.EntryServiceEnd:
			nd.WindowUntil = 0
			if nd.State == store.StateService {
				ev.transitioned = s.transition(nd, store.StateTrusted, "service-end", now, map[string]any{"entry": e.N}, ch) || ev.transitioned
			}
		case wire.EntryTamperCleared:
			p, ok := dec.(*wire.TamperClearedPayload)
			if !ok {
				p = &wire.TamperClearedPayload{}
			}
			if !ok || !s.useToken(ctx, ds, nd, p.TokenID, wire.TokenClear, now, ch) {
				suspect = "token-replay"
				evidence["token"] = hexID(p.TokenID)
				evidence["entry"] = e.N
			}
		case wire.EntryCoverOpen:
			if nd.WindowUntil != 0 && e.T <= nd.WindowUntil {
				continue // expected: a technician with a service token
			}
			tampered = "cover-open"
			tamperEntries = append(tamperEntries, map[string]any{"n": e.N, "type": wire.EntryName(e.Type), "t": e.T, "payload": dec})
		case wire.EntryCheckFail, wire.EntryRefused, wire.EntryErased, wire.EntryMagnet:
			if tampered == "" || tampered == "cover-open" {
				tampered = wire.EntryName(e.Type)
			}
			tamperEntries = append(tamperEntries, map[string]any{"n": e.N, "type": wire.EntryName(e.Type), "t": e.T, "payload": dec})
		case wire.EntryOverflow, wire.EntryBadDownlink:
			suspect = wire.EntryName(e.Type)
			evidence["entry"] = e.N
		}
	}
	if r.State&wire.StateCodeMismatch != 0 || r.Meas.Status == wire.MeasMismatch {
		tampered = "code-mismatch"
		evidence["bad"] = r.Meas.Bad
	}
	if tamperEntries != nil {
		evidence["entries"] = tamperEntries
	}
	if r.Boot == nd.LastBoot && nd.LastDeviceTime > 0 && r.Time+3600 < nd.LastDeviceTime {
		suspect = "clock"
		evidence["device_time"], evidence["previous_device_time"] = r.Time, nd.LastDeviceTime
	}
	switch {
	case tampered != "":
		ev.transitioned = s.transition(nd, store.StateTampered, tampered, now, evidence, ch) || ev.transitioned
	case suspect != "":
		ev.transitioned = s.transition(nd, store.StateSuspect, suspect, now, evidence, ch) || ev.transitioned
	case partial:
		// no promotion on part of a log: the chunk reaching the claimed n decides
	default:
		switch nd.State {
		case store.StateProvisioned:
			ev.transitioned = s.transition(nd, store.StateTrusted, "first-report", now, evidence, ch)
		case store.StateSuspect:
			ev.transitioned = s.transition(nd, store.StateTrusted, "clean-report", now, evidence, ch)
		case store.StateSilent:
			evidence["log_from"], evidence["log_to"] = from.N, r.Log.N
			evidence["silent_since"] = nd.StateSince
			ev.transitioned = s.transition(nd, store.StateTrusted, "returned-log-continuous", now, evidence, ch)
		case store.StateService:
			if !hasPending(ds, wire.TokenService, now) && (nd.WindowUntil == 0 || r.Time > nd.WindowUntil) && len(ch.UsedTokens) == 0 {
				ev.transitioned = s.transition(nd, store.StateTrusted, "service-window-over", now, evidence, ch)
			}
		}
	}
	return ev
}

func hasPending(ds *devState, action string, now time.Time) bool {
	for _, t := range ds.tokens {
		if t.Action == action && !t.Used && t.Expires.After(now) {
			return true
		}
	}
	return false
}

// useToken marks a token used by a log entry; false when it is unknown, for another
// device or action, expired, or used already (S6).
func (s *Server) useToken(ctx context.Context, ds *devState, nd *store.Device, id []byte, action string, now time.Time, ch *store.Change) bool {
	for _, u := range ch.UsedTokens {
		if bytes.Equal(u, id) {
			return false
		}
	}
	t, err := s.st.GetToken(ctx, id)
	if err != nil || t.Dev != nd.ID || t.Epoch != nd.Epoch || t.Action != action || t.Used || !t.Expires.After(now) {
		detail, _ := json.Marshal(map[string]any{"token": hexID(id), "action": action})
		ch.Audits = append(ch.Audits, store.Audit{At: now, Actor: "pipeline", Kind: "rejection", Dev: nd.ID, Reason: "token-replay", Detail: string(detail)})
		return false
	}
	ch.UsedTokens = append(ch.UsedTokens, id)
	return true
}
