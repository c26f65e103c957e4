package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/wire"
)

// Reports over mqtts:// and https:// to a server with TLS on both listeners: the device
// verifies the server's certificate and the report is acknowledged.
func TestReportOverTLS(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fieldseal test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}

	f := newFleet(t) // for the manifest and vendor key
	srv, err := serve.New(server.Config{Store: sqliteStore(t), DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", HTTPTLS: srvTLS, MQTTTLS: srvTLS,
		VendorKeys: []ed25519.PublicKey{f.vendor.Public().(ed25519.PublicKey)}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		srv.Shutdown(c)
	}()
	if _, err := srv.RegisterManifest(ctx, f.signed); err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"mqtts", "https"} {
		b, err := srv.ProvisionDevice(ctx, "tls-"+scheme, "watermeter")
		if err != nil {
			t.Fatal(err)
		}
		addr := srv.MQTTAddr()
		if scheme == "https" {
			addr = srv.HTTPAddr()
		}
		url := scheme + "://" + strings.TrimPrefix(addr, "mqtt://")
		d, err := agent.New(agent.Config{Bundle: b, Manifest: wire.ManifestRef{Product: f.man.Product, Version: f.man.Version, Root: f.man.Root},
			Chain: newMem(), Now: uint64(time.Now().Unix())})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := agent.Dial(ctx, url, b, agent.DialOptions{TLS: &tls.Config{RootCAs: pool}})
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		rep, _ := d.Report(uint64(time.Now().Unix()))
		ack, err := tr.Send(ctx, rep)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if err := d.HandleAck(ack, uint64(time.Now().Unix())); err != nil {
			t.Fatalf("%s: ack: %v", url, err)
		}
		tr.Close()
		// A device that does not trust the certificate must not talk to that server.
		if bad, err := agent.Dial(ctx, url, b, agent.DialOptions{TLS: &tls.Config{}}); err == nil {
			if _, err := bad.Send(ctx, rep); err == nil {
				t.Errorf("%s: report sent to a server with an untrusted certificate", url)
			}
			bad.Close()
		}
	}
}

func newMem() *fschain.MemStorage { return fschain.NewMemStorage() }
