package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/analytics/districts"
	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// defaultReportInterval is used for silence detection when no manifest says otherwise.
const defaultReportInterval = 900

// ErrInput is an operator error (bad request): the API answers 400 with its text.
var ErrInput = districts.ErrInput

// RegisterManifest checks a vendor-signed manifest (known vendor key, valid signature and
// structure, version higher than the product's current one) and registers it. Devices of
// the product must run it from then on, unless pinned; they are sent it as a token.
func (s *Server) RegisterManifest(ctx context.Context, signed []byte) (*wire.Manifest, error) {
	m, err := s.RegisterManifestAs(ctx, signed, "api")
	if errors.Is(err, ErrAlreadyRegistered) {
		return m, nil
	}
	return m, err
}

// ErrAlreadyRegistered says the very same signed manifest is registered already: a re-run
// deploy script pushing it again succeeds and changes nothing.
var ErrAlreadyRegistered = errors.New("already registered")

// RegisterManifestAs is RegisterManifest on behalf of actor (audited); the very same
// manifest registered again returns it with ErrAlreadyRegistered.
func (s *Server) RegisterManifestAs(ctx context.Context, signed []byte, actor string) (*wire.Manifest, error) {
	m, err := wire.OpenManifest(signed, s.cfg.VendorKeys...)
	if err != nil {
		s.AuditAdmin(ctx, actor, "manifest-refused", "", Reason(err), map[string]any{"error": err.Error()})
		return nil, err
	}
	if cur, err := s.st.CurrentManifest(ctx, m.Product); err == nil {
		if m.Version <= cur.Version {
			if same, err := s.st.GetManifest(ctx, m.Product, m.Version); err == nil && bytes.Equal(same.Signed, signed) {
				return m, ErrAlreadyRegistered
			}
			err := fmt.Errorf("%w: %s version %d is not higher than the current %d", wire.ErrDowngrade, m.Product, m.Version, cur.Version)
			s.AuditAdmin(ctx, actor, "manifest-refused", "", wire.ErrDowngrade.Error(), map[string]any{"product": m.Product, "version": m.Version, "current": cur.Version})
			return nil, err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	sm := &store.Manifest{Product: m.Product, Version: m.Version, Root: m.Root, Signed: signed, Created: s.now(), ReportInterval: m.Policy.ReportInterval}
	if err := s.st.PutManifest(ctx, sm); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("%w: %v", wire.ErrDowngrade, err)
		}
		return nil, err
	}
	s.mans.invalidate(m.Product)
	s.AuditAdmin(ctx, actor, "manifest", "", "registered", map[string]any{"product": m.Product, "version": m.Version, "root": hexID(m.Root)})
	s.log.Info("manifest registered", "product", m.Product, "version", m.Version)
	return m, nil
}

// AuditAdmin records an operator's action (or a refusal of one) in the audit trail.
func (s *Server) AuditAdmin(ctx context.Context, actor, kind, dev, reason string, detail map[string]any) {
	b, _ := json.Marshal(detail)
	if err := s.st.AddAudit(ctx, store.Audit{At: s.now(), Actor: actor, Kind: kind, Dev: dev, Reason: reason, Detail: string(b)}); err != nil {
		s.log.Warn("audit", "err", err)
	}
}

// ProvisionDevice creates (or re-provisions, with the next epoch) a device of product
// with fresh secrets K_1, R and T, and returns its bundle. The secrets are never readable
// through the API again.
func (s *Server) ProvisionDevice(ctx context.Context, dev, product string) (*wire.Bundle, error) {
	return s.Provision(ctx, dev, product, 0, "api")
}

// Provision is ProvisionDevice on behalf of actor, pinned to manifest version pin (0: the
// product's current one), with options (WithDevEUI).
func (s *Server) Provision(ctx context.Context, dev, product string, pin uint64, actor string, opts ...ProvisionOption) (*wire.Bundle, error) {
	var o provisionOpts
	for _, f := range opts {
		f(&o)
	}
	if !wire.ValidDeviceID(dev) {
		return nil, fmt.Errorf("%w: device id %q: 1–64 of [A-Za-z0-9._:-]", ErrInput, dev)
	}
	if product == "" {
		return nil, fmt.Errorf("%w: product is required", ErrInput)
	}
	vs, cur, err := s.mans.product(ctx, product)
	if err == nil && cur == 0 {
		// Read again, not rate-limited like a report's miss (only admins get here): the
		// manifest may have been pushed to another replica a moment ago, and the
		// operator's retry must succeed at once.
		vs, cur, err = s.mans.load(ctx, product)
	}
	if err != nil {
		return nil, err
	}
	if cur == 0 {
		return nil, s.unknownProduct(ctx, product)
	}
	version, interval := cur, uint32(defaultReportInterval)
	if pin != 0 {
		m, all, _, err := s.mans.lookup(ctx, product, pin) // may have been registered on another replica
		if err != nil {
			return nil, err
		}
		vs = all
		if m == nil {
			return nil, fmt.Errorf("%w: %s has no manifest version %d", ErrInput, product, pin)
		}
		version = pin
	}
	if m, ok := vs[version]; ok && m.ReportInterval > 0 {
		interval = m.ReportInterval
	}
	ds, err := s.devs.lock(ctx, dev, s)
	if err != nil {
		return nil, err
	}
	defer ds.mu.Unlock()
	epoch := uint32(1)
	kind := "provision"
	if ds.d != nil {
		epoch = ds.d.Epoch + 1
		kind = "reprovision"
	}
	eui, err := s.provisionDevEUI(ctx, dev, ds.d, o)
	if err != nil {
		return nil, err
	}
	var k1 fschain.Key
	rand.Read(k1[:])
	r, t := make([]byte, 32), make([]byte, 32)
	rand.Read(r)
	rand.Read(t)
	a := fschain.NewAnchor(dev, epoch, k1)
	now := s.now()
	d := &store.Device{ID: dev, Product: product, Epoch: epoch, UplinkKey: r, DownlinkKey: t, State: store.StateProvisioned, StateSince: now,
		StateReason: kind, PinnedVersion: pin, AnchorN: 0, AnchorHead: append([]byte(nil), a.Head[:]...), AnchorKey: append([]byte(nil), a.NextKey[:]...),
		ReportInterval: interval, Created: now, DevEUI: eui}
	detailMap := map[string]any{"product": product, "epoch": epoch, "pinned_version": pin}
	if eui != "" {
		detailMap["dev_eui"] = eui
	}
	detail, _ := json.Marshal(detailMap)
	ch := &store.Change{Device: d, Create: true, Audits: []store.Audit{{At: now, Actor: actor, Kind: kind, Dev: dev, Reason: kind, Detail: string(detail)}}}
	var oldEUI string
	if ds.d != nil {
		oldEUI = ds.d.DevEUI
	}
	err = s.commit.submit(ctx, ch)
	s.euis.invalidate(eui, oldEUI) // also when refused: the store knows better than the cache
	if err != nil {
		ds.loaded = false
		return nil, err
	}
	d.Version = 1
	ds.d, ds.tokens, ds.loaded = d, nil, true
	b := &wire.Bundle{Device: dev, Epoch: epoch, ChainKey: k1[:], UplinkKey: r, DownlinkKey: t, ServerPub: wire.HexBytes(s.PublicKey()), Product: product, ManifestVersion: version}
	b.MQTT, b.HTTP = s.deviceURLs()
	if s.topics.Root != wire.DefaultTopicRoot {
		b.TopicRoot = s.topics.Root // the default stays unsaid: bundles read by older devices are unchanged
	}
	s.log.Info("device provisioned", "dev", dev, "product", product, "epoch", epoch)
	return b, nil
}

// unknownProduct is the refusal to provision a device of a product with no registered
// manifest (a misspelt product, or its manifest not pushed yet): such a device could never
// be checked against what it must run, so it could never be trusted.
func (s *Server) unknownProduct(ctx context.Context, product string) error {
	const fix = "register its manifest first ('fieldseal manifest push', or POST /api/v1/manifests), then provision"
	all, err := s.st.ListManifests(ctx)
	if err != nil {
		return err
	}
	var known []string
	for _, m := range all {
		if !slices.Contains(known, m.Product) {
			known = append(known, m.Product)
		}
	}
	if len(known) == 0 {
		return fmt.Errorf("%w: product %q has no registered manifest (none is registered yet): %s", ErrInput, product, fix)
	}
	slices.Sort(known)
	return fmt.Errorf("%w: product %q has no registered manifest (known products: %s): check the name, or %s", ErrInput, product, strings.Join(known, ", "), fix)
}

// IssueServiceToken opens a service visit: a single-use service token for the device,
// delivered in its next ack, that makes cover events during the window expected.
func (s *Server) IssueServiceToken(ctx context.Context, dev, workOrder, technician string, window time.Duration) error {
	_, err := s.OpenVisit(ctx, dev, workOrder, technician, window, "api")
	return err
}

// OpenVisit books a service visit on behalf of actor: a window token for the device.
func (s *Server) OpenVisit(ctx context.Context, dev, workOrder, technician string, window time.Duration, actor string) (*store.Visit, error) {
	if window <= 0 {
		window = time.Hour
	}
	if window > 7*24*time.Hour {
		return nil, fmt.Errorf("%w: service window over 7 days", ErrInput)
	}
	ds, err := s.devs.lock(ctx, dev, s)
	if err != nil {
		return nil, err
	}
	defer ds.mu.Unlock()
	if ds.d == nil {
		return nil, fmt.Errorf("%w: device %q", store.ErrNotFound, dev)
	}
	now := s.now()
	nd := ds.d.Clone()
	ch := &store.Change{Device: nd}
	tok, err := newToken(nd, wire.TokenService, wire.TokenArgs{WorkOrder: workOrder, Technician: technician, Window: uint32(window / time.Second)}, now, 7*24*time.Hour, ch)
	if err != nil {
		return nil, err
	}
	v := store.Visit{ID: newVisitID(), Dev: dev, WorkOrder: workOrder, Technician: technician, TokenID: tok.ID, Opened: now}
	ch.Visits = append(ch.Visits, v)
	detail, _ := json.Marshal(map[string]any{"visit": v.ID, "work_order": workOrder, "technician": technician, "token": hexID(tok.ID), "window_s": int(window / time.Second)})
	ch.Audits = append(ch.Audits, store.Audit{At: now, Actor: actor, Kind: "service-token", Dev: dev, Reason: "issued", Detail: string(detail)})
	if nd.State != store.StateTampered {
		prev := nd.State
		nd.State, nd.StateReason, nd.StateSince = store.StateService, "service-token", now
		ch.Audits = append(ch.Audits, store.Audit{At: now, Actor: actor, Kind: "transition", Dev: dev, Reason: "service-token", Detail: fmt.Sprintf(`{"from":%q,"to":"service","visit":%q}`, prev, v.ID)})
	}
	if err := s.commitDevice(ctx, ds, ch); err != nil {
		return nil, err
	}
	return &v, nil
}

// commitDevice commits an admin change to a locked device and updates the cache.
func (s *Server) commitDevice(ctx context.Context, ds *devState, ch *store.Change) error {
	return s.apply(ctx, ds, ch)
}

func newVisitID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "v-" + hexID(b)
}

// CloseVisit records the end of a service visit: the new physical seal number and the
// inspection result. A device in service returns to trusted.
func (s *Server) CloseVisit(ctx context.Context, visitID, sealNumber, result, actor string) (*store.Visit, error) {
	v, err := s.st.GetVisit(ctx, visitID)
	if err != nil {
		return nil, err
	}
	if result == "" {
		return nil, fmt.Errorf("%w: an inspection result is required", ErrInput)
	}
	ds, err := s.devs.lock(ctx, v.Dev, s)
	if err != nil {
		return nil, err
	}
	defer ds.mu.Unlock()
	if ds.d == nil {
		return nil, fmt.Errorf("%w: device %q", store.ErrNotFound, v.Dev)
	}
	now := s.now()
	nd := ds.d.Clone()
	v.Closed, v.SealNumber, v.Result = now, sealNumber, result
	detail, _ := json.Marshal(map[string]any{"visit": v.ID, "seal_number": sealNumber, "result": result})
	ch := &store.Change{Device: nd, CloseVisits: []store.Visit{*v}, Audits: []store.Audit{{At: now, Actor: actor, Kind: "visit-closed", Dev: v.Dev, Reason: "closed", Detail: string(detail)}}}
	if t, err := s.st.GetToken(ctx, v.TokenID); err == nil && !t.Used {
		// The visit is over: its token must not open a window later (revoked = used).
		ch.UsedTokens = append(ch.UsedTokens, v.TokenID)
	}
	if nd.State == store.StateService {
		nd.State, nd.StateReason, nd.StateSince = store.StateTrusted, "visit-closed", now
		nd.WindowUntil = 0
		ch.Audits = append(ch.Audits, store.Audit{At: now, Actor: actor, Kind: "transition", Dev: v.Dev, Reason: "visit-closed", Detail: string(detail)})
	}
	if err := s.commitDevice(ctx, ds, ch); err != nil {
		return nil, err
	}
	return v, nil
}

// ClearTamper closes a tampered (or suspect) device after an inspection: records the
// result, returns the device to trusted and queues a clear token that lets the device
// clear its latched tamper state (and log that it did).
func (s *Server) ClearTamper(ctx context.Context, dev, result, actor string) error {
	if result == "" {
		return fmt.Errorf("%w: an inspection result is required", ErrInput)
	}
	ds, err := s.devs.lock(ctx, dev, s)
	if err != nil {
		return err
	}
	defer ds.mu.Unlock()
	if ds.d == nil {
		return fmt.Errorf("%w: device %q", store.ErrNotFound, dev)
	}
	if ds.d.State != store.StateTampered && ds.d.State != store.StateSuspect {
		return fmt.Errorf("%w: device %s is %s, not tampered or suspect", ErrInput, dev, ds.d.State)
	}
	now := s.now()
	nd := ds.d.Clone()
	ch := &store.Change{Device: nd}
	tok, err := newToken(nd, wire.TokenClear, wire.TokenArgs{}, now, 7*24*time.Hour, ch)
	if err != nil {
		return err
	}
	detail, _ := json.Marshal(map[string]any{"from": nd.State, "to": store.StateTrusted, "result": result, "token": hexID(tok.ID), "was": nd.StateReason})
	nd.State, nd.StateReason, nd.StateSince = store.StateTrusted, "inspected", now
	nd.Rejections = 0
	ch.Audits = append(ch.Audits, store.Audit{At: now, Actor: actor, Kind: "transition", Dev: dev, Reason: "tamper-cleared", Detail: string(detail)})
	return s.commitDevice(ctx, ds, ch)
}

// CheckSilent moves devices that missed SilentAfter report intervals to silent, and ends
// service states whose tokens expired. It runs on a timer; the demo calls it directly.
func (s *Server) CheckSilent(ctx context.Context) error {
	now := s.now()
	var errs []error
	for _, state := range []string{store.StateTrusted, store.StateSuspect, store.StateService} {
		f := store.DeviceFilter{State: state, OverdueAt: now, Missed: s.cfg.SilentAfter, DefaultInterval: defaultReportInterval * time.Second}
		list, err := s.st.ListDevices(ctx, f)
		if err != nil {
			return err
		}
		for _, d := range list {
			if !f.Overdue(d) {
				continue
			}
			interval := time.Duration(d.ReportInterval) * time.Second
			if interval <= 0 {
				interval = defaultReportInterval * time.Second
			}
			if err := s.markSilent(ctx, d.ID, now, interval); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Server) markSilent(ctx context.Context, dev string, now time.Time, interval time.Duration) error {
	ds, err := s.devs.lock(ctx, dev, s)
	if err != nil {
		return err
	}
	defer ds.mu.Unlock()
	d := ds.d
	if d == nil || d.State == store.StateSilent || d.State == store.StateTampered || now.Sub(d.LastSeen) <= time.Duration(s.cfg.SilentAfter)*interval {
		return nil
	}
	nd := d.Clone()
	ch := &store.Change{Device: nd}
	ev := map[string]any{"last_seen": d.LastSeen, "missed_intervals": int(now.Sub(d.LastSeen) / interval), "interval_s": int(interval / time.Second), "anchor_n": d.AnchorN, "was": d.State}
	nd.State = store.StateTrusted // silent overrides suspect/service
	if !transition(nd, store.StateSilent, "silent", now, ev, ch) {
		return nil
	}
	ch.Audits[len(ch.Audits)-1].Actor = "timer"
	s.log.Warn("device silent", "dev", dev, "last_seen", d.LastSeen)
	return s.commitDevice(ctx, ds, ch)
}

// CreateAPIToken creates an API token with a role and returns the secret (shown once).
func (s *Server) CreateAPIToken(ctx context.Context, name, role, actor string) (string, error) {
	if name == "" || len(name) > 64 {
		return "", fmt.Errorf("%w: name must be 1–64 characters", ErrInput)
	}
	if !slices.Contains(Roles, role) {
		return "", fmt.Errorf("%w: role must be one of %s", ErrInput, strings.Join(Roles, ", "))
	}
	secret := newSecret("fst_")
	if err := s.st.PutAPIToken(ctx, store.APIToken{Hash: hashToken(secret), Name: name, Role: role, Created: s.now()}); err != nil {
		return "", err
	}
	s.AuditAdmin(ctx, actor, "api-token", "", "created", map[string]any{"name": name, "role": role})
	return secret, nil
}

// DeleteAPIToken revokes the API token called name on behalf of actor.
func (s *Server) DeleteAPIToken(ctx context.Context, name, actor string) error {
	if err := s.st.DeleteAPIToken(ctx, name); err != nil {
		return err
	}
	s.AuditAdmin(ctx, actor, "api-token", "", "deleted", map[string]any{"name": name})
	return nil
}

// LookupAPIToken finds the API token whose secret is secret (store.ErrNotFound if none).
func (s *Server) LookupAPIToken(ctx context.Context, secret string) (*store.APIToken, error) {
	return s.st.GetAPIToken(ctx, hashToken(secret))
}

// AuthenticateDevice says whether password is device dev's MQTT password (derived from its
// uplink key, wire.MQTTPassword).
func (s *Server) AuthenticateDevice(ctx context.Context, dev string, password []byte) bool {
	ds, err := s.devs.lock(ctx, dev, s)
	if err != nil {
		return false
	}
	defer ds.mu.Unlock()
	return ds.d != nil && hmac.Equal([]byte(wire.MQTTPassword(ds.d.UplinkKey)), password)
}

// deviceURLs are the addresses a bundle tells a device to report to. An external broker's
// URL loses its user info (the server's own broker credentials must never reach a device)
// and takes the scheme devices understand: mqtt:// or mqtts://.
func (s *Server) deviceURLs() (mqttURL, httpURL string) {
	if s.cfg.MQTTBroker != "" {
		if u, err := url.Parse(s.cfg.MQTTBroker); err == nil && u.Host != "" {
			scheme := "mqtt"
			switch u.Scheme {
			case "ssl", "tls", "mqtts", "tcps":
				scheme = "mqtts"
			}
			mqttURL = scheme + "://" + u.Host
		}
	} else if addr := s.MQTTAddr(); addr != "" {
		mqttURL = "mqtt://" + addr
		if s.cfg.MQTTTLS != nil {
			mqttURL = "mqtts://" + addr
		}
	}
	if addr := s.HTTPAddr(); addr != "" {
		httpURL = "http://" + addr
		if s.cfg.HTTPTLS != nil {
			httpURL = "https://" + addr
		}
	}
	return mqttURL, httpURL
}

// AckAlert acknowledges an alert and records who did (the API route and the console).
func (s *Server) AckAlert(ctx context.Context, id int64, actor string) error {
	if err := s.st.AckAlert(ctx, id, actor, s.now()); err != nil {
		return err
	}
	s.AuditAdmin(ctx, actor, "alert-ack", "", "acknowledged", map[string]any{"alert": id})
	return nil
}
