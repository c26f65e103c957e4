package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldseal/fieldseal/store"
)

// A device's LoRaWAN DevEUI is set at provisioning (store.Device.DevEUI); the LoRaWAN
// transport resolves the DevEUIs network servers name through ResolveDevEUI.

// ParseDevEUI checks a DevEUI (16 hex digits, any case) and returns it normalised: lowercase.
func ParseDevEUI(s string) (string, error) {
	if b, err := hex.DecodeString(s); err != nil || len(b) != 8 {
		return "", fmt.Errorf("%w: DevEUI %q: want 16 hex digits, such as 70B3D57ED0000001", ErrInput, s)
	}
	return strings.ToLower(s), nil
}

// ProvisionOption adds to what Provision sets.
type ProvisionOption func(*provisionOpts)

type provisionOpts struct {
	devEUI string // as given; checked by Provision
}

// WithDevEUI provisions the device with LoRaWAN DevEUI eui (16 hex digits, any case).
// Re-provisioning without it keeps the device's DevEUI.
func WithDevEUI(eui string) ProvisionOption {
	return func(o *provisionOpts) { o.devEUI = eui }
}

// provisionDevEUI is the DevEUI a (re-)provisioned device gets: the one asked for, checked
// against the other devices and the TOML [lorawan.devices] tables, or the one it had (cur
// is the device's row, nil when new).
func (s *Server) provisionDevEUI(ctx context.Context, dev string, cur *store.Device, o provisionOpts) (string, error) {
	if o.devEUI == "" {
		if cur != nil {
			return cur.DevEUI, nil
		}
		return "", nil
	}
	eui, err := ParseDevEUI(o.devEUI)
	if err != nil {
		return "", err
	}
	if id, ok := s.configDevEUI(eui); ok && id != dev {
		return "", fmt.Errorf("%w: DevEUI %s is mapped to device %q in the server's [lorawan.devices] table", store.ErrConflict, eui, id)
	}
	switch d, err := s.st.DeviceByEUI(ctx, eui); {
	case err == nil && d.ID != dev:
		return "", fmt.Errorf("%w: DevEUI %s is already device %q's", store.ErrConflict, eui, d.ID)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	return eui, nil
}

// configDevEUI is the device the TOML [lorawan.devices] tables map eui (lowercase) to.
func (s *Server) configDevEUI(eui string) (string, bool) {
	for _, l := range s.cfg.LoRaWAN {
		for k, id := range l.Devices {
			if strings.EqualFold(k, eui) {
				return id, true
			}
		}
	}
	return "", false
}

// ResolveDevEUI is the device provisioned with DevEUI eui (16 hex digits, lowercase), or
// ErrNotFound. Answers are cached for euiCacheTTL; provisioning on this server invalidates
// them at once, provisioning on another replica within the TTL.
func (s *Server) ResolveDevEUI(ctx context.Context, eui string) (string, error) {
	if id, ok := s.euis.get(eui); ok {
		if id == "" {
			return "", fmt.Errorf("%w: DevEUI %q", store.ErrNotFound, eui)
		}
		return id, nil
	}
	d, err := s.st.DeviceByEUI(ctx, eui)
	switch {
	case err == nil:
		s.euis.put(eui, d.ID)
		return d.ID, nil
	case errors.Is(err, store.ErrNotFound):
		s.euis.put(eui, "") // an unknown DevEUI sending often costs one lookup per TTL
	}
	return "", err
}

// CountLoRaWANDrop counts an uplink the LoRaWAN transport dropped before the LPWAN
// profile saw it (fieldseal_lorawan_uplinks_dropped_total{reason}).
func (s *Server) CountLoRaWANDrop(reason string) { s.met.lorawanDropped.WithLabelValues(reason).Inc() }

func newLoRaWANDropped() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldseal_lorawan_uplinks_dropped_total",
		Help: "LoRaWAN uplinks dropped before verification, by reason: undecodable (not an uplink event of the configured kind), unknown-dev-eui (no device has it), dev-eui-conflict (TOML and store disagree), lookup-failed."}, []string{"reason"})
}

// euiCacheTTL bounds how long a DevEUI answer is kept: how late a replica learns of a
// device provisioned (or given another DevEUI) on another replica.
const euiCacheTTL = time.Minute

// euiCacheMax bounds the cache; when full it starts over (a network server naming many
// unknown DevEUIs cannot grow it without bound).
const euiCacheMax = 100_000

// euiCache caches DevEUI → device id ("" for none).
type euiCache struct {
	mu sync.Mutex
	m  map[string]euiEntry
}

type euiEntry struct {
	id      string
	expires time.Time
}

func (c *euiCache) get(eui string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[eui]
	if !ok || time.Now().After(e.expires) {
		return "", false
	}
	return e.id, true
}

func (c *euiCache) put(eui, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= euiCacheMax {
		c.m = map[string]euiEntry{}
	}
	c.m[eui] = euiEntry{id: id, expires: time.Now().Add(euiCacheTTL)}
}

// invalidate forgets the given DevEUIs ("" ignored).
func (c *euiCache) invalidate(euis ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range euis {
		delete(c.m, e)
	}
}
