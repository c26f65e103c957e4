// Command lpvectorgen writes testdata/vectors/lpwan/vectors.json from wire.GenerateLPVectors.
// Run from the repository root: go run ./wire/internal/lpvectorgen
package main

import (
	"encoding/json"
	"log"
	"os"

	"github.com/fieldseal/fieldseal/wire"
)

func main() {
	out, err := json.MarshalIndent(wire.GenerateLPVectors(), "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("testdata/vectors/lpwan/vectors.json", append(out, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}
