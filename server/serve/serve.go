// Package serve assembles the fleet server as it runs: the orchestrating core (server)
// with its transports attached — the HTTP API (server/httpapi), MQTT ingest
// (server/mqttingest) and the LoRaWAN network servers (server/lorawan). The core imports
// none of them: each is an adapter in front of server.HandleReport.
package serve

import (
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/server/lorawan"
	"github.com/fieldseal/fieldseal/server/mqttingest"
)

// New is server.New with the standard transports attached, each configured by cfg
// (HTTPAddr, MQTTAddr or MQTTBroker, LoRaWAN); Start starts them.
func New(cfg server.Config) (*server.Server, error) {
	s, err := server.New(cfg)
	if err != nil {
		return nil, err
	}
	s.Attach(httpapi.New(s), mqttingest.New(s), lorawan.New(s))
	return s, nil
}
