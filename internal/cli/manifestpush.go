package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "manifest", summary: "manifest push: register a signed manifest with the fleet server", run: runManifest})
}

func runManifest(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] != "push" {
		fmt.Fprintln(env.Stderr, "Usage: fieldseal manifest push --server URL --token T DIST/manifest.cose")
		return ExitError
	}
	fs := newFlags(env, "manifest push", "--server URL --token T DIST/manifest.cose")
	srv := fs.String("server", "", "fleet server URL, e.g. http://127.0.0.1:8080")
	token := fs.String("token", "", "admin API token, or a file holding it (default $FIELDSEAL_TOKEN)")
	pos, code, ok := parseFlags(fs, args[1:])
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fs.Usage()
		return ExitError
	}
	signed, err := os.ReadFile(pos[0])
	if err != nil {
		return fail(env, "manifest push", err)
	}
	if len(signed) > wire.MaxManifestSize {
		return fail(env, "manifest push", fmt.Errorf("%s is over %d bytes", pos[0], wire.MaxManifestSize))
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
		Product string
		Version uint64
		Root    string
	}
	json.Unmarshal(data, &m)
	fmt.Fprintf(env.Stdout, "registered %s version %d (root %s); devices of %s must run it from now on\n", m.Product, m.Version, m.Root, m.Product)
	return ExitOK
}
