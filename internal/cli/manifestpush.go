package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fieldseal/fieldseal/manifest"
	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "manifest", summary: "manifest push: register a signed manifest with the fleet server", run: runManifest})
}

func runManifest(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] != "push" {
		if len(args) > 0 && args[0] != "-h" && args[0] != "--help" {
			fmt.Fprintf(env.Stderr, "fieldseal manifest: unknown sub-command %q\n", args[0])
		}
		fmt.Fprintln(env.Stderr, "Usage: fieldseal manifest push --server URL --token T DIST/manifest.cose")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return ExitOK
		}
		return ExitError
	}
	fs := newFlags(env, "manifest push", "--server URL --token T DIST/manifest.cose")
	srv := fs.String("server", "", "fleet server URL, e.g. http://127.0.0.1:8080")
	token := fs.String("token", "", "admin API token, or a file holding it (default $FIELDSEAL_TOKEN)")
	pos, code, ok := parseFlags(fs, args[1:])
	if !ok {
		return code
	}
	if code, ok := requireArgs(env, fs, pos, "MANIFEST: the signed manifest to register (DIST/manifest.cose from 'fieldseal build')"); !ok {
		return code
	}
	if code, ok := requireFlags(env, fs, "server"); !ok {
		return code
	}
	signed, err := readLimited(pos[0], wire.MaxManifestSize)
	if err != nil {
		return fail(env, "manifest push", fmt.Errorf("manifest: %w", err))
	}
	// Check it here first: a file that is no signed manifest at all gets a plain answer
	// instead of the server's refusal.
	if _, err := wire.ParseManifestUnverified(signed); err != nil {
		return fail(env, "manifest push", fmt.Errorf("%s is not a signed manifest (want DIST/%s from 'fieldseal build')", pos[0], manifest.ManifestFile))
	}
	c, err := newAPIClient(*srv, *token)
	if err != nil {
		return fail(env, "manifest push", err)
	}
	data, err := c.do(ctx, "POST", "/api/v1/manifests", wire.ManifestMediaType, signed)
	if err != nil {
		return fail(env, "manifest push", err)
	}
	var m struct {
		Product           string `json:"product"`
		Version           uint64 `json:"version"`
		Root              string `json:"root"`
		AlreadyRegistered bool   `json:"already_registered"`
	}
	json.Unmarshal(data, &m)
	if m.AlreadyRegistered {
		fmt.Fprintf(env.Stdout, "%s version %d is already registered (root %s): nothing to do\n", m.Product, m.Version, m.Root)
		return ExitOK
	}
	fmt.Fprintf(env.Stdout, "registered %s version %d (root %s); devices of %s must run it from now on\n", m.Product, m.Version, m.Root, m.Product)
	return ExitOK
}
