package sim

import (
	"sync"
	"time"
)

// Clock is a virtual clock running Speed times faster than the wall clock from the moment
// Start is called; before that it stands still at its origin. The server under test is
// given Now too, so its timestamps, silence timers and token expiries live in the same
// compressed time as the devices.
type Clock struct {
	mu        sync.Mutex
	start     time.Time // origin at creation: Origin() keeps returning it
	origin    time.Time // virtual time at wallStart
	speed     float64
	wallStart time.Time
	running   bool
	wallNow   func() time.Time
}

// NewClock returns a stopped clock at origin that will run speed times faster than real time.
func NewClock(origin time.Time, speed float64) *Clock {
	if speed <= 0 {
		speed = 1
	}
	return &Clock{start: origin, origin: origin, speed: speed, wallNow: time.Now}
}

// Start sets the clock running.
func (c *Clock) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		c.running = true
		c.wallStart = c.wallNow()
	}
}

// Now is the virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return c.origin
	}
	el := c.wallNow().Sub(c.wallStart)
	return c.origin.Add(time.Duration(float64(el) * c.speed))
}

// Stop freezes the clock where it is (Start resumes it).
func (c *Clock) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.origin = c.origin.Add(time.Duration(float64(c.wallNow().Sub(c.wallStart)) * c.speed))
		c.running = false
	}
}

// Set moves a stopped clock to t: a stepped run advances virtual time itself, tick by
// tick, instead of letting the wall clock drive it, so that what happens at a virtual time
// does not depend on how fast the machine is.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		panic("sim: Clock.Set on a running clock")
	}
	c.origin = t
}

// SetSpeed changes the rate from now on; virtual time stays continuous.
func (c *Clock) SetSpeed(speed float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		w := c.wallNow()
		c.origin = c.origin.Add(time.Duration(float64(w.Sub(c.wallStart)) * c.speed))
		c.wallStart = w
	}
	c.speed = speed
}

// Origin is where the clock started.
func (c *Clock) Origin() time.Time { return c.start }

// Speed is virtual seconds per wall second.
func (c *Clock) Speed() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.speed
}

// Wall converts a virtual duration to the wall time it takes.
func (c *Clock) Wall(d time.Duration) time.Duration { return time.Duration(float64(d) / c.Speed()) }
