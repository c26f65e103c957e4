package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "keygen", summary: "create an Ed25519 vendor key (PATH) and its public key (PATH.pub)", run: runKeygen})
}

func runKeygen(_ context.Context, env *Env, args []string) int {
	fs := newFlags(env, "keygen", "--out PATH [--force]")
	out := fs.String("out", "", "where to write the private key (mode 0600); the public key goes to PATH.pub")
	force := fs.Bool("force", false, "overwrite existing key files")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 1 && *out == "" {
		*out = pos[0]
	} else if len(pos) > 0 {
		return usageError(env, fs, "unexpected argument %q", pos[0])
	}
	if code, ok := requireFlags(env, fs, "out"); !ok {
		return code
	}
	priv, err := keys.Generate()
	if err != nil {
		return fail(env, "keygen", err)
	}
	if err := keys.WritePair(*out, priv, *force); err != nil {
		if errors.Is(err, keys.ErrExists) {
			return fail(env, "keygen", fmt.Errorf("%w; refusing to replace a vendor key: manifests it signed would no longer verify with the new one", err))
		}
		return fail(env, "keygen", err)
	}
	fmt.Fprintf(env.Stdout, "wrote %s (private, keep it offline) and %s%s (public)\nkey id %x\n",
		*out, *out, keys.PubSuffix, wire.KeyID(priv.Public().(ed25519.PublicKey)))
	return ExitOK
}
