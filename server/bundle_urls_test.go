package server

import (
	"context"
	"crypto/tls"
	"testing"
)

// A bundle must never carry the server's own broker credentials, and must name schemes
// devices understand.
func TestBundleURLsCarryNoBrokerCredentials(t *testing.T) {
	for _, c := range []struct {
		broker, want string
	}{
		{"ssl://fieldseal:s3cret@broker.example:8883", "mqtts://broker.example:8883"},
		{"tcp://user:pw@10.0.0.5:1883", "mqtt://10.0.0.5:1883"},
		{"mqtts://broker.example:8883", "mqtts://broker.example:8883"},
	} {
		s := &Server{cfg: Config{MQTTBroker: c.broker}}
		if got, _ := s.deviceURLs(); got != c.want {
			t.Errorf("broker %q: bundle says %q, want %q", c.broker, got, c.want)
		}
	}
	s := &Server{cfg: Config{HTTPTLS: &tls.Config{}, MQTTTLS: &tls.Config{}}}
	s.Attach(fixedAddr{"mqtt", "127.0.0.1:8883"})
	if m, _ := s.deviceURLs(); m != "mqtts://127.0.0.1:8883" {
		t.Errorf("embedded broker with TLS: %q", m)
	}
}

// fixedAddr is a transport that only says where it listens.
type fixedAddr struct{ name, addr string }

func (f fixedAddr) Name() string                   { return f.name }
func (f fixedAddr) Start(context.Context) error    { return nil }
func (f fixedAddr) Addr() string                   { return f.addr }
func (f fixedAddr) Shutdown(context.Context) error { return nil }
