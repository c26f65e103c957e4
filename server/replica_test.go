package server_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store/sqlite"
	"github.com/fieldseal/fieldseal/wire"
)

// replicas is two servers on one shared SQLite store and data folder, as replicas behind a
// load balancer run.
func replicas(t *testing.T) (a, b *env) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "shared.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	shared := func(c *server.Config) { c.Store, c.DataDir = st, dir }
	return newEnv(t, shared), newEnv(t, shared)
}

// Two replicas on one shared store: a manifest registered on B is accepted on A, whose
// manifest cache loaded the product before the registration (a miss reloads it).
func TestManifestRegisteredOnOtherReplica(t *testing.T) {
	a, b := replicas(t)
	ctx := context.Background()

	v1, m1 := a.manifest("watermeter", 1, "v1", nil)
	if _, err := a.s.RegisterManifest(ctx, v1); err != nil {
		t.Fatal(err)
	}
	d := a.provision("meter-1", "watermeter")
	d.man = wire.ManifestRef{Product: "watermeter", Version: 1, Root: m1.Root}
	a.mustSend(d) // A caches the product with version 1 current
	late := a.provision("meter-2", "watermeter")
	late.man = d.man
	a.mustSend(late)

	v2, m2 := b.manifest("watermeter", 2, "v2", nil)
	if _, err := b.s.RegisterManifest(ctx, v2); err != nil {
		t.Fatal(err)
	}
	// meter-1 installed version 2 (from B's token) and reports to A.
	d.man = wire.ManifestRef{Product: "watermeter", Version: 2, Root: m2.Root}
	if _, err := a.send(d, nil); err != nil {
		t.Fatalf("upgraded device rejected by the other replica: %v", err)
	}
	if got := a.device("meter-1"); got.RunningVersion != 2 {
		t.Fatalf("running version %d, want 2", got.RunningVersion)
	}
	// A now knows version 2 is current: a device still on 1 is sent the manifest.
	ack := a.mustSend(late)
	var found bool
	for _, c := range ack.Commands {
		if tok, err := wire.OpenToken(c, "meter-2", late.b.DownlinkKey); err == nil && tok.Action == wire.TokenManifest {
			found = true
		}
	}
	if !found {
		t.Fatalf("device on version 1 got %d commands, none a manifest token", len(ack.Commands))
	}
	// An unknown version is still rejected after the reload.
	d.man = wire.ManifestRef{Product: "watermeter", Version: 3, Root: m2.Root}
	if _, err := a.send(d, nil); server.Reason(err) != "wrong-manifest" {
		t.Fatalf("unregistered version 3: %v", err)
	}
}
