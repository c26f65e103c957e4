package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "provision", summary: "register a device with the server and write its secret bundle (once)", run: runProvision})
}

// apiClient calls the fleet server's API with a bearer token.
type apiClient struct {
	base, token string
	hc          *http.Client
}

func newAPIClient(server, token string) (*apiClient, error) {
	if server == "" {
		return nil, fmt.Errorf("--server is required (e.g. http://127.0.0.1:8080)")
	}
	if token == "" {
		token = os.Getenv("FIELDSEAL_TOKEN")
	}
	if token == "" {
		return nil, fmt.Errorf("--token is required (or FIELDSEAL_TOKEN); the admin token is in the server's data folder, admin.token")
	}
	if t, err := os.ReadFile(token); err == nil && !strings.ContainsAny(token, " \n") && len(t) < 512 {
		token = strings.TrimSpace(string(t)) // a path to a token file
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	return &apiClient{base: strings.TrimRight(server, "/"), token: token, hc: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do sends body with content type ct and returns the response body, or an error that
// carries the server's reason name.
func (c *apiClient) do(ctx context.Context, method, path, ct string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error, Detail string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("server refused (%d %s): %s", resp.StatusCode, e.Error, e.Detail)
		}
		return nil, fmt.Errorf("server answered %s", resp.Status)
	}
	return data, nil
}

func runProvision(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "provision", "--server URL --token T --device ID --product P [--manifest VERSION] --out BUNDLE")
	srv := fs.String("server", "", "fleet server URL, e.g. http://127.0.0.1:8080")
	token := fs.String("token", "", "admin API token, or a file holding it (default $FIELDSEAL_TOKEN)")
	dev := fs.String("device", "", "device id: 1–64 of [A-Za-z0-9._:-]")
	product := fs.String("product", "", "product the device belongs to")
	pin := fs.Uint64("manifest", 0, "pin the device to this manifest version (default: the product's current one)")
	out := fs.String("out", "", "where to write the device bundle (JSON with the device's secrets, mode 0600)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return fail(env, "provision", fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if *dev == "" || *product == "" || *out == "" {
		fs.Usage()
		return ExitError
	}
	c, err := newAPIClient(*srv, *token)
	if err != nil {
		return fail(env, "provision", err)
	}
	// Refuse to overwrite before asking the server: the secrets are shown only once.
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(env, "provision", fmt.Errorf("bundle file: %w", err))
	}
	body, _ := json.Marshal(map[string]any{"device": *dev, "product": *product, "manifest": *pin})
	data, err := c.do(ctx, "POST", "/api/v1/devices", "application/json", body)
	if err != nil {
		f.Close()
		os.Remove(*out)
		return fail(env, "provision", err)
	}
	var b wire.Bundle
	if err := json.Unmarshal(data, &b); err != nil || b.Check() != nil {
		f.Close()
		os.Remove(*out)
		return fail(env, "provision", fmt.Errorf("server sent an invalid bundle: %v", err))
	}
	pretty, _ := json.MarshalIndent(&b, "", "  ")
	if _, err := f.Write(append(pretty, '\n')); err != nil {
		f.Close()
		return fail(env, "provision", err)
	}
	if err := f.Close(); err != nil {
		return fail(env, "provision", err)
	}
	fmt.Fprintf(env.Stdout, "provisioned %s (product %s, epoch %d, manifest version %d)\nwrote %s — it holds the device's secrets: copy it to the device's internal storage, then delete it\n",
		b.Device, b.Product, b.Epoch, b.ManifestVersion, *out)
	return ExitOK
}
