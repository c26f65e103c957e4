package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// connPool is a small pool of pgx connections. pgxpool would do, but it needs
// github.com/jackc/puddle/v2, which go.mod does not list; this is the part of it the store
// uses: a bound on open connections, reuse of idle ones, and no reuse of a connection
// that is broken, busy, inside a transaction, too old or idle so long it may be dead.
type connPool struct {
	cfg   *pgx.ConnConfig
	slots chan struct{} // one token per connection that may be open

	mu     sync.Mutex
	idle   []*pooledConn // most recently used last
	closed bool
}

type pooledConn struct {
	*pgx.Conn
	born, used time.Time
}

const (
	defaultMaxConns = 4
	maxLifetime     = time.Hour   // then reconnect: balancers and failovers see new sessions
	pingAfterIdle   = time.Second // a connection idle longer is pinged before use (as pgxpool does)
)

var errPoolClosed = errors.New("postgres: store closed")

// newConnPool takes pool_max_conns (as pgxpool names it) out of the parsed DSN's
// parameters; every other parameter goes to the server as a setting (search_path...).
func newConnPool(cfg *pgx.ConnConfig) (*connPool, error) {
	max := defaultMaxConns
	if v, ok := cfg.RuntimeParams["pool_max_conns"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("postgres: pool_max_conns %q: want a number ≥ 1", v)
		}
		max = n
		delete(cfg.RuntimeParams, "pool_max_conns")
	}
	return &connPool{cfg: cfg, slots: make(chan struct{}, max)}, nil
}

func (p *connPool) acquire(ctx context.Context) (*pooledConn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			<-p.slots
			return nil, errPoolClosed
		}
		var c *pooledConn
		if n := len(p.idle); n > 0 {
			c, p.idle = p.idle[n-1], p.idle[:n-1]
		}
		p.mu.Unlock()
		if c == nil {
			break
		}
		now := time.Now()
		if c.IsClosed() || now.Sub(c.born) > maxLifetime || (now.Sub(c.used) > pingAfterIdle && c.Ping(ctx) != nil) {
			closeConn(c)
			continue
		}
		return c, nil
	}
	pc, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		<-p.slots
		return nil, err
	}
	now := time.Now()
	return &pooledConn{Conn: pc, born: now, used: now}, nil
}

// release returns c to the pool, or closes it when it cannot be reused as it is.
func (p *connPool) release(c *pooledConn) {
	defer func() { <-p.slots }()
	if c.IsClosed() || c.PgConn().IsBusy() || c.PgConn().TxStatus() != 'I' {
		closeConn(c)
		return
	}
	c.used = time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		closeConn(c)
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// with runs fn on a pooled connection. When the connection turns out dead (the server
// restarted, a failover, an idle connection cut by a firewall) fn runs once more on a new
// one: always for a read (idempotent), for a write only if nothing reached the server.
func (p *connPool) with(ctx context.Context, idempotent bool, fn func(*pgx.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := p.acquire(ctx)
		if err != nil {
			return err
		}
		err = fn(c.Conn)
		dead := err != nil && c.IsClosed()
		p.release(c)
		if dead && attempt == 0 && ctx.Err() == nil && (idempotent || pgconn.SafeToRetry(err)) {
			p.dropIdle() // they are likely dead too
			continue
		}
		return err
	}
}

// dropIdle closes every idle connection.
func (p *connPool) dropIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		closeConn(c)
	}
}

// close closes the idle connections now and the others when they are released.
func (p *connPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.dropIdle()
}

func closeConn(c *pooledConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.Close(ctx)
}
