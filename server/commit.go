package server

import (
	"context"
	"errors"
	"sync"

	"github.com/fieldseal/fieldseal/store"
)

// committer is the group commit: one goroutine takes every change queued while the
// previous transaction ran and writes them in one transaction, so one fsync covers a
// whole batch. Each submitter waits for its own result: nothing is acked before the batch
// holding it is durable.
type committer struct {
	st    store.Store
	max   int
	met   *metrics
	ch    chan *job
	done  chan struct{}
	once  sync.Once
	start func()
}

type job struct {
	c   *store.Change
	err chan error
}

var errStopped = errors.New("server is shutting down")

func newCommitter(st store.Store, max int, met *metrics) *committer {
	c := &committer{st: st, max: max, met: met, ch: make(chan *job, 16*max), done: make(chan struct{})}
	var startOnce sync.Once
	c.start = func() { startOnce.Do(func() { go c.loop() }) }
	return c
}

func (c *committer) loop() {
	defer close(c.done)
	batch := make([]*job, 0, c.max)
	changes := make([]*store.Change, 0, c.max)
	for {
		j, ok := <-c.ch
		if !ok {
			return
		}
		batch = append(batch[:0], j)
	drain:
		for len(batch) < c.max {
			select {
			case j, ok := <-c.ch:
				if !ok {
					break drain
				}
				batch = append(batch, j)
			default:
				break drain
			}
		}
		changes = changes[:0]
		for _, j := range batch {
			changes = append(changes, j.c)
		}
		errs := c.st.Commit(context.Background(), changes)
		for i, j := range batch {
			j.err <- errs[i]
		}
		if c.met != nil {
			c.met.batchSize.Observe(float64(len(batch)))
		}
	}
}

// submit queues a change and waits until it is durable (or failed).
func (c *committer) submit(ctx context.Context, ch *store.Change) (err error) {
	defer func() {
		if recover() != nil { // channel closed: shutting down
			err = errStopped
		}
	}()
	j := &job{c: ch, err: make(chan error, 1)}
	c.ch <- j
	return <-j.err
}

func (c *committer) depth() int { return len(c.ch) }

// stop drains the queue: every change submitted before stop is committed.
func (c *committer) stop() {
	c.once.Do(func() {
		c.start() // a never-started committer still has to drain and close
		close(c.ch)
		<-c.done
	})
}
