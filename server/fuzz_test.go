package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/store/memstore"
	"github.com/fieldseal/fieldseal/wire"
)

// FuzzHandleReport: any input gets a reason or an ack, never a panic; a rejected input
// never carries an ack unless it was authentic.
func FuzzHandleReport(f *testing.F) {
	s, d := fuzzServer(f)
	d.log(wire.EntryBoot, &wire.BootPayload{BootCount: 1, Result: "ok"})
	good := d.report(nil)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{0xd1, 0x84, 0x43, 0xa1, 0x01, 0x05})
	f.Add(bytes.Repeat([]byte{0x81}, 100))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ack, err := s.HandleReport(context.Background(), data)
		if err == nil && ack == nil {
			t.Fatal("accepted without an ack")
		}
		if err != nil && server.Reason(err) == "" {
			t.Fatalf("rejection without a reason: %v", err)
		}
	})
}

// FuzzHTTPRequest: the HTTP handler answers any method, path, headers and body without
// panicking and never with a 5xx.
func FuzzHTTPRequest(f *testing.F) {
	s, d := fuzzServer(f)
	h := httpapi.New(s).Handler()
	tok := s.AdminToken()
	f.Add("POST", "/v1/reports", `application/cose; cose-type="cose-mac0"`, "", d.report(nil))
	f.Add("POST", "/v1/reports:batch", "application/cbor", "", wire.MustMarshal([][]byte{{1}}))
	f.Add("POST", "/api/v1/devices", "application/json", tok, []byte(`{"device":"a","product":"p"}`))
	f.Add("POST", "/api/v1/tokens", "application/json", tok, []byte(`{"name":"x","role":"viewer"}`))
	f.Add("POST", "/api/v1/manifests", "application/cose", tok, []byte{0xd2, 0x84})
	f.Add("GET", "/api/v1/devices/fz-1/events?after=-1&limit=99999", "", tok, []byte{})
	f.Add("POST", "/api/v1/alerts/99999999999999999999/ack", "", tok, []byte{})
	f.Add("POST", "/api/v1/devices/fz-1/visits", "application/json", tok, []byte(`{"work_order":"w","window_s":-5}`))
	f.Fuzz(func(t *testing.T, method, path, ctype, token string, body []byte) {
		if len(path) == 0 || path[0] != '/' {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://x"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", ctype)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body.String())
		}
	})
}

func fuzzServer(f *testing.F) (*server.Server, *device) {
	dir := f.TempDir()
	// In memory: coverage-instrumented SQLite would make fuzzing crawl.
	vendor := testVendor()
	s, err := serve.New(server.Config{DataDir: dir, HTTPAddr: "off", MQTTAddr: "off", Logger: quietLogger(), Store: memstore.New(),
		VendorKeys: []ed25519.PublicKey{vendor.Public().(ed25519.PublicKey)}})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Shutdown(context.Background()) })
	e := &env{t: &testing.T{}, s: s, clock: &clock{}, vendor: vendor}
	e.clock.t = e.clock.t.AddDate(2026, 0, 0)
	e.ensureManifest("watermeter")
	b, err := s.ProvisionDevice(context.Background(), "fz-1", "watermeter")
	if err != nil {
		f.Fatal(err)
	}
	return s, e.newDevice(b)
}
