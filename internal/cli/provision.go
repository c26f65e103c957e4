package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/server"
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
		return nil, fmt.Errorf("missing --server (the fleet server's URL, e.g. http://127.0.0.1:8080)")
	}
	token, err := resolveToken(token)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	return &apiClient{base: strings.TrimRight(server, "/"), token: token, hc: &http.Client{Timeout: 30 * time.Second}}, nil
}

// resolveToken turns --token (or $FIELDSEAL_TOKEN) into the token itself: a value naming
// a file is read from it. A value that looks like a path but names no file is an error: sent
// as the token it would only earn a baffling 401.
func resolveToken(token string) (string, error) {
	from := "--token"
	if token == "" {
		token, from = os.Getenv("FIELDSEAL_TOKEN"), "FIELDSEAL_TOKEN"
	}
	if token == "" {
		return "", errors.New("missing --token (the admin API token, or the file that holds it: the server writes it to DATA/admin.token, e.g. fieldseal-data/admin.token; or set FIELDSEAL_TOKEN)")
	}
	st, err := os.Stat(token)
	switch {
	case err == nil && st.IsDir():
		return "", fmt.Errorf("%s %s is a folder: give the token file in it (%s)", from, token, filepath.Join(token, "admin.token"))
	case err == nil:
		b, err := readLimited(token, 4<<10)
		if err != nil {
			return "", fmt.Errorf("%s: token file: %w", from, err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" || strings.ContainsAny(t, " \n\t") {
			return "", fmt.Errorf("%s %s: the file does not hold one token (want a single line, as in the server's admin.token)", from, token)
		}
		return t, nil
	case strings.ContainsAny(token, `/\`) || strings.HasSuffix(token, ".token"):
		return "", fmt.Errorf("%s %s: no such file; give the admin token itself or the path of the file that holds it (the server prints it at start: DATA/admin.token)", from, token)
	}
	return token, nil
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
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the server at %s (%v): is 'fieldseal server' running there, and is --server right?", c.base, err)
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
	fs := newFlags(env, "provision", "--server URL --token T --device ID --product P [--manifest VERSION] [--dev-eui EUI] --out BUNDLE")
	srv := fs.String("server", "", "fleet server URL, e.g. http://127.0.0.1:8080")
	token := fs.String("token", "", "admin API token, or a file holding it (default $FIELDSEAL_TOKEN)")
	dev := fs.String("device", "", "device id: 1–64 of [A-Za-z0-9._:-]")
	product := fs.String("product", "", "product the device belongs to")
	pin := fs.Uint64("manifest", 0, "pin the device to this manifest version (default: the product's current one)")
	devEUI := fs.String("dev-eui", "", "the meter's LoRaWAN DevEUI (16 hex digits, e.g. 70B3D57ED0000001): its uplinks through a network server are this device's (default: none; re-provisioning keeps the one it had)")
	out := fs.String("out", "", "where to write the device bundle (JSON with the device's secrets, mode 0600)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := requireArgs(env, fs, pos); !ok {
		return code
	}
	if code, ok := requireFlags(env, fs, "server", "device", "product", "out"); !ok {
		return code
	}
	if *devEUI != "" {
		if _, err := server.ParseDevEUI(*devEUI); err != nil {
			return usageError(env, fs, "--dev-eui %s: want 16 hex digits, such as 70B3D57ED0000001", *devEUI)
		}
	}
	c, err := newAPIClient(*srv, *token)
	if err != nil {
		return fail(env, "provision", err)
	}
	// Refuse to overwrite before asking the server: the secrets are shown only once.
	if _, err := os.Lstat(*out); err == nil {
		return fail(env, "provision", fmt.Errorf("--out %s exists: it may hold another device's secrets; choose a new file name", *out))
	}
	// A product with no registered manifest (misspelt, or not pushed yet) is refused by
	// the server, whose answer names the known products and the fix.
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(env, "provision", fmt.Errorf("--out %s: %w", *out, errors.Unwrap(err)))
	}
	req := map[string]any{"device": *dev, "product": *product, "manifest": *pin}
	if *devEUI != "" {
		req["dev_eui"] = *devEUI // the server checks it is no other device's
	}
	body, _ := json.Marshal(req)
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
	lora := ""
	if *devEUI != "" {
		lora = ", DevEUI " + strings.ToLower(*devEUI)
	}
	fmt.Fprintf(env.Stdout, "provisioned %s (product %s, epoch %d, manifest version %d%s)\nwrote %s — it holds the device's secrets: copy it to the device's internal storage, then delete it\n",
		b.Device, b.Product, b.Epoch, b.ManifestVersion, lora, *out)
	return ExitOK
}
