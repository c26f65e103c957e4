package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/testenv"
)

// `fieldseal server` serves the operator's console: the start message says where, "/"
// asks for a sign-in, the admin token signs in over HTTPS to a Secure session cookie and
// the fleet page answers.
func TestServerServesConsole(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, certPEM, 0o644)
	os.WriteFile(keyPath, keyPEM, 0o600)
	httpAddr := testenv.FreeAddr(t)
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuf
	done := make(chan int, 1)
	conf := filepath.Join(dir, "fieldseal.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("data = %q\nhttp = %q\nmqtt = \"off\"\nlog_level = \"warn\"\n[http_tls]\ncert = %q\nkey = %q\n", data, httpAddr, certPath, keyPath)), 0o644)
	go func() {
		done <- Run(ctx, &Env{Stdout: &out, Stderr: &errOut}, []string{"server", "--config", conf})
	}()
	defer func() { cancel(); <-done }()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "https://" + httpAddr
	var resp *http.Response
	var err error
	for i := 0; i < 200; i++ {
		if resp, err = hc.Get(base + "/"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("console: %v (%s)", err, errOut.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
		t.Fatalf("GET / without a session: %s %q, want 303 to /ui/login", resp.Status, resp.Header.Get("Location"))
	}
	if !strings.Contains(out.String(), "console     "+base+"/") {
		t.Errorf("the start message does not say where the console is:\n%s", out.String())
	}
	tok, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(url.Values{"token": {strings.TrimSpace(string(tok))}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure || !resp.Cookies()[0].HttpOnly {
		t.Fatalf("sign-in: %s, cookies %+v: want one Secure, HttpOnly session cookie", resp.Status, resp.Cookies())
	}
	if resp, err = hc.Get(base + "/ui/"); err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<h1>Fleet</h1>") || !strings.Contains(string(body), "admin (admin)") {
		t.Fatalf("fleet page after sign-in: %s\n%s", resp.Status, fmt.Sprint(len(body)))
	}
}
