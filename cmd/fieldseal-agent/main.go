// Command fieldseal-agent is the binary a Linux-class device runs: the agent and the
// offline check of an exported evidence log (`log verify|show|export`). It is
// internal/devicecli alone, so it carries no SQL driver, MQTT broker, HTML templating or
// metrics library; deps_test.go proves that on this package's full dependency list.
package main

import (
	"os"

	"github.com/fieldseal/fieldseal/internal/devicecli"
)

func main() {
	devicecli.Program = "fieldseal-agent"
	os.Exit(devicecli.Main(os.Args[1:]))
}
