package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
)

// A device of a product with no registered manifest (a misspelt product, or its manifest
// not pushed yet) could never be checked against what it must run: the API refuses to
// provision it with 400, naming the product, the known products and the fix, and creates
// nothing — no device, no audit record.
func TestProvisionUnknownProductRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	refused := func(product string, want ...string) {
		t.Helper()
		before, err := e.s.Store().ListAudit(ctx, store.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"device": "meter-9", "product": product})
		req, _ := http.NewRequest("POST", e.base+"/api/v1/devices", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.s.AdminToken())
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var resp struct{ Error, Detail string }
		json.NewDecoder(r.Body).Decode(&resp)
		r.Body.Close()
		if r.StatusCode != 400 || resp.Error != "invalid" {
			t.Fatalf("product %q: %d %+v, want 400 invalid", product, r.StatusCode, resp)
		}
		for _, w := range append(want, `"`+product+`"`, "no registered manifest", "fieldseal manifest push") {
			if !strings.Contains(resp.Detail, w) {
				t.Errorf("product %q: detail %q does not say %q", product, resp.Detail, w)
			}
		}
		if _, err := e.s.Store().GetDevice(ctx, "meter-9"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("product %q: a device was stored (%v)", product, err)
		}
		after, err := e.s.Store().ListAudit(ctx, store.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Errorf("product %q: %d audit records after the refusal, %d before", product, len(after), len(before))
		}
	}
	refused("watermeter", "none is registered yet")

	e.ensureManifest("watermeter")
	e.ensureManifest("gasmeter")
	refused("watermeterr", "known products: gasmeter, watermeter", "check the name")
	refused("watermeter ", "known products: gasmeter, watermeter")

	// Pushed now: the same request succeeds.
	if _, err := e.s.Provision(ctx, "meter-9", "watermeter", 0, "admin"); err != nil {
		t.Fatalf("after the manifest was registered: %v", err)
	}
}

// A replica that refused a product a moment ago provisions it as soon as its manifest is
// registered on another replica: the refusal reads the store again, not a stale cache.
func TestProvisionAfterManifestOnOtherReplica(t *testing.T) {
	a, b := replicas(t)
	ctx := context.Background()
	if _, err := a.s.ProvisionDevice(ctx, "meter-1", "watermeter"); !errors.Is(err, server.ErrInput) {
		t.Fatalf("no manifest yet: %v, want an input error", err)
	}
	b.ensureManifest("watermeter")
	if _, err := a.s.ProvisionDevice(ctx, "meter-1", "watermeter"); err != nil {
		t.Fatalf("manifest registered on the other replica: %v", err)
	}
}
