package serve_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/store/memstore"
)

// The assembled server listens where its transports do: HTTPAddr and MQTTAddr name them,
// the HTTP API answers, and Shutdown closes both.
func TestNewAttachesTheStandardTransports(t *testing.T) {
	s, err := serve.New(server.Config{Store: memstore.New(), DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"http", "mqtt", "lorawan"} {
		if s.Transport(name) == nil {
			t.Errorf("no %s transport attached", name)
		}
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.HTTPAddr() == "" || s.MQTTAddr() == "" {
		t.Fatalf("listening on HTTP %q, MQTT %q", s.HTTPAddr(), s.MQTTAddr())
	}
	resp, err := http.Get("http://" + s.HTTPAddr() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s.HTTPAddr() + "/healthz"); err == nil {
		t.Fatal("HTTP still answers after Shutdown")
	}
}
