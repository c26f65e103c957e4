// Command vectorgen writes testdata/vectors/wire/vectors.json from wire.GenerateVectors.
// Run from the repository root: go run ./wire/internal/vectorgen
package main

import (
	"encoding/json"
	"log"
	"os"

	"github.com/fieldseal/fieldseal/wire"
)

func main() {
	out, err := json.MarshalIndent(wire.GenerateVectors(), "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("testdata/vectors/wire/vectors.json", append(out, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}
