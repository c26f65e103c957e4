package devicecli

import (
	"context"
	"fmt"

	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "version", summary: "print the fieldseal protocol version", run: func(_ context.Context, env *Env, _ []string) int {
		fmt.Fprintf(env.Stdout, "fieldseal protocol %d\n", wire.ProtocolVersion)
		return ExitOK
	}})
}
