package server

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// The device state machine:
//
//	provisioned → trusted                  first accepted report
//	* → tampered                           code mismatch, tamper entry (cover opened outside a
//	                                       service window, check-fail, refused, erased, magnet),
//	                                       a latched report flag no entry explains (evidence-lost),
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
// silent also raises an alert. A replayed report moves nothing (rejection, S12).

// ReasonEvidenceLost names a report whose MAC'd flags say a tamper input latched (cover
// opened, magnet, tamper-latched) while no verified log entry records it: the entry was
// removed (a rolled-back state slot, a restored flash image), so the evidence is gone but
// the flag proves it existed (D22).
const ReasonEvidenceLost = "evidence-lost"

var stateRank = map[string]int{
	store.StateProvisioned: 0, store.StateTrusted: 0, store.StateService: 1, store.StateSilent: 2,
	store.StateSuspect: 3, store.StateTampered: 4,
}

// transition moves nd to state (unless a stickier state holds) and records it in ch.
func transition(nd *store.Device, state, reason string, now time.Time, evidence map[string]any, ch *store.Change) bool {
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

// judge walks a report's fresh entries and flags and decides the device's new state.
type judge struct {
	in       *evalInput
	nd       *store.Device
	ch       *store.Change
	evidence map[string]any

	tampered, suspect string
	tamperEntries     []map[string]any
	explained         uint32 // latched flags explained by an entry since the last clear
	moved             bool   // an entry already made a transition (service-end)
}

// The latched report flags, and the flags each tamper entry type explains.
const latchFlags = wire.StateCoverWasOpen | wire.StateMagnet | wire.StateTamperLatched

// latchedBy returns the latched report flags an entry explains: a device latches a flag
// exactly when it logs one of these entries (agent.latchFor, the guard's latch_for), and
// only a clear token unlatches it.
func latchedBy(typ uint16) uint32 {
	switch typ {
	case wire.EntryCoverOpen:
		return wire.StateCoverWasOpen | wire.StateTamperLatched
	case wire.EntryMagnet:
		return wire.StateMagnet | wire.StateTamperLatched
	case wire.EntryCheckFail, wire.EntryRefused, wire.EntryErased, wire.EntryRollbackDetected, wire.EntryLogCorrupt:
		return wire.StateTamperLatched
	}
	return 0
}

// entry applies one newly verified entry (with its head and its decoded payload).
func (j *judge) entry(e *wire.Entry, head [32]byte, payload any) {
	nd, now := j.nd, j.in.Now
	rec := store.Event{Dev: nd.ID, Epoch: nd.Epoch, N: e.N, T: e.T, Type: e.Type, Tamper: wire.IsTamper(e.Type),
		Payload: e.Payload, Tag: e.Tag, Head: append([]byte(nil), head[:]...), Received: now}
	if payload != nil && (rec.Tamper || e.Type == wire.EntryServiceBegin || e.Type == wire.EntryServiceEnd || e.Type == wire.EntryTamperCleared) {
		b, _ := json.Marshal(payload)
		rec.Decoded = string(b)
	}
	j.ch.Events = append(j.ch.Events, rec)
	j.explained |= latchedBy(e.Type)
	switch e.Type {
	case wire.EntryServiceBegin:
		p, _ := payload.(*wire.ServiceBeginPayload)
		t := j.useToken(p, wire.TokenService, e.N)
		if t == nil {
			return
		}
		// The window is judged in server time (D25): it runs from when the token was
		// delivered — no later than the ack that answered the device's previous report —
		// for the token's window, plus one report interval for the last openings to arrive.
		// Device time, which a renter can reset, plays no part.
		win := uint64(defaultWindow)
		if t.Window > 0 {
			win = uint64(t.Window)
		}
		delivered := j.in.Dev.LastSeen
		if delivered.IsZero() || delivered.Before(t.Issued) {
			delivered = t.Issued
		}
		nd.WindowUntil = uint64(delivered.Unix()) + win + uint64(interval(j.in))
	case wire.EntryServiceEnd:
		nd.WindowUntil = 0
		if nd.State == store.StateService {
			j.moved = transition(nd, store.StateTrusted, "service-end", now, map[string]any{"entry": e.N}, j.ch) || j.moved
		}
	case wire.EntryTamperCleared:
		p, _ := payload.(*wire.TamperClearedPayload)
		if j.useToken(p, wire.TokenClear, e.N) != nil {
			j.explained = 0 // the device unlatched everything: later flags need later entries
		}
	case wire.EntryCoverOpen:
		if nd.WindowUntil != 0 && uint64(now.Unix()) <= nd.WindowUntil {
			return // expected: a technician with a service token, reported inside its window
		}
		j.tamper("cover-open", e, payload)
	case wire.EntryCheckFail, wire.EntryRefused, wire.EntryErased, wire.EntryMagnet:
		j.tamper(wire.EntryName(e.Type), e, payload)
	case wire.EntryRepeat: // a counted flood of one kind (D24): tamper under that kind's name
		p, _ := payload.(*wire.RepeatPayload)
		kind := e.Type
		if p != nil {
			kind = p.Type
			j.explained |= latchedBy(p.Type)
		}
		j.tamper(wire.EntryName(kind), e, payload)
	case wire.EntryOverflow, wire.EntryBadDownlink:
		j.suspect = wire.EntryName(e.Type)
		j.evidence["entry"] = e.N
	default:
		// Any other tamper-class type (rollback-detected, log-corrupt, and those added
		// later) is tamper evidence under its own name.
		if wire.IsTamper(e.Type) {
			j.tamper(wire.EntryName(e.Type), e, payload)
		}
	}
}

func interval(in *evalInput) uint32 {
	if in.Interval > 0 {
		return in.Interval
	}
	if in.Dev.ReportInterval > 0 {
		return in.Dev.ReportInterval
	}
	return defaultInterval
}

func (j *judge) tamper(reason string, e *wire.Entry, payload any) {
	if j.tampered == "" || j.tampered == "cover-open" {
		j.tampered = reason
	}
	j.tamperEntries = append(j.tamperEntries, map[string]any{"n": e.N, "type": wire.EntryName(e.Type), "t": e.T, "payload": payload})
}

// useToken marks the token an entry names used; nil (and suspect token-replay) when it is
// undecodable, unknown, for another device or action, expired, or used already (S6).
func (j *judge) useToken(p any, action string, n uint64) *store.Token {
	var id []byte
	switch p := p.(type) {
	case *wire.ServiceBeginPayload:
		if p != nil {
			id = p.TokenID
		}
	case *wire.TamperClearedPayload:
		if p != nil {
			id = p.TokenID
		}
	}
	var t *store.Token
	for _, list := range [][]store.Token{j.in.Pending, j.in.Named} {
		for i := range list {
			if t == nil && id != nil && bytes.Equal(list[i].ID, id) {
				t = &list[i]
			}
		}
	}
	nd, now := j.nd, j.in.Now
	if t == nil || usedIn(j.ch, id) || t.Dev != nd.ID || t.Epoch != nd.Epoch || t.Action != action || t.Used || !t.Expires.After(now) {
		detail, _ := json.Marshal(map[string]any{"token": hexID(id), "action": action})
		j.ch.Audits = append(j.ch.Audits, store.Audit{At: now, Actor: "pipeline", Kind: "rejection", Dev: nd.ID, Reason: "token-replay", Detail: string(detail)})
		j.suspect = "token-replay"
		j.evidence["token"] = hexID(id)
		j.evidence["entry"] = n
		return nil
	}
	j.ch.UsedTokens = append(j.ch.UsedTokens, id)
	return t
}

// flags applies the report's MAC'd state flags: a code mismatch is tamper; a latched flag
// that no verified entry explains is evidence lost (D22).
func (j *judge) flags() {
	r := j.in.Report
	if r.State&wire.StateCodeMismatch != 0 || r.Meas.Status == wire.MeasMismatch {
		j.tampered = "code-mismatch"
		j.evidence["bad"] = r.Meas.Bad
	}
	if lost := r.State & latchFlags &^ j.explained; lost != 0 {
		j.tampered = ReasonEvidenceLost
		j.evidence["flags"] = r.State
		j.evidence["unexplained_flags"] = lost
		j.explained |= r.State & latchFlags // one verdict per loss, not one per report
	}
}

// decide moves the device by what the entries and flags said; true if it transitioned.
func (j *judge) decide(partial bool) bool {
	nd, in, now, ch, evidence := j.nd, j.in, j.in.Now, j.ch, j.evidence
	moved := j.moved
	if j.tamperEntries != nil {
		evidence["entries"] = j.tamperEntries
	}
	r := in.Report
	if r.Boot == nd.LastBoot && nd.LastDeviceTime > 0 && r.Time+3600 < nd.LastDeviceTime {
		j.suspect = "clock"
		evidence["device_time"], evidence["previous_device_time"] = r.Time, nd.LastDeviceTime
	}
	switch {
	case j.tampered != "":
		return transition(nd, store.StateTampered, j.tampered, now, evidence, ch) || moved
	case j.suspect != "":
		return transition(nd, store.StateSuspect, j.suspect, now, evidence, ch) || moved
	case partial:
		return moved // no promotion on part of a log: the chunk reaching the claimed n decides
	}
	switch nd.State {
	case store.StateProvisioned:
		return transition(nd, store.StateTrusted, "first-report", now, evidence, ch) || moved
	case store.StateSuspect:
		return transition(nd, store.StateTrusted, "clean-report", now, evidence, ch) || moved
	case store.StateSilent:
		evidence["log_from"], evidence["log_to"] = in.From.N, r.Log.N
		evidence["silent_since"] = nd.StateSince
		return transition(nd, store.StateTrusted, "returned-log-continuous", now, evidence, ch) || moved
	case store.StateService:
		if !hasPending(in.Pending, wire.TokenService, now) && (nd.WindowUntil == 0 || uint64(now.Unix()) > nd.WindowUntil) && len(ch.UsedTokens) == 0 {
			return transition(nd, store.StateTrusted, "service-window-over", now, evidence, ch) || moved
		}
	}
	return moved
}

func hasPending(tokens []store.Token, action string, now time.Time) bool {
	for _, t := range tokens {
		if t.Action == action && !t.Used && t.Expires.After(now) {
			return true
		}
	}
	return false
}
