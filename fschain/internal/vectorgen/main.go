// Command vectorgen writes the FS-chain v1 test vectors to testdata/vectors/fschain.
// Run it from the fschain folder with `go generate`, or `go run ./fschain/internal/vectorgen -root .`
// from the repository root.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fieldseal/fieldseal/fschain/internal/vectors"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	files, err := vectors.Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vectorgen:", err)
		os.Exit(1)
	}
	dir := filepath.Join(*root, "testdata", "vectors", "fschain")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "vectorgen:", err)
		os.Exit(1)
	}
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "vectorgen:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "vectorgen:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("vectorgen: wrote %d files to %s\n", len(files), dir)
}
