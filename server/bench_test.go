package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/wire"
)

// BenchmarkHandleReport measures the pipeline alone (no transport): parallel devices,
// one new log entry per report, real SQLite with group commit.
func BenchmarkHandleReport(b *testing.B) {
	t := &testing.T{}
	e := newEnv(t, func(c *server.Config) { c.HTTPAddr, c.MQTTAddr = "off", "off" })
	defer e.s.Shutdown(context.Background())
	const nDev = 256
	devs := make([]*device, nDev)
	for i := range devs {
		devs[i] = e.provision(fmt.Sprintf("b-%d", i), "watermeter")
	}
	var next atomic.Int64
	b.ResetTimer()
	b.SetParallelism(nDev / 2)
	b.RunParallel(func(pb *testing.PB) {
		d := devs[next.Add(1)-1]
		for pb.Next() {
			d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: 1})
			ack, err := e.s.HandleReport(context.Background(), d.report(nil))
			if err != nil {
				panic(err)
			}
			d.accept(ack)
		}
	})
}
