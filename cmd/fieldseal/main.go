// Command fieldseal is the one binary of fieldseal: every verb lives in internal/cli.
package main

import (
	"os"

	"github.com/fieldseal/fieldseal/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
