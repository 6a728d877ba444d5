package brokerstate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxBatchOps is the most operations one session transaction carries
// (etcd refuses more than 128 by default).
const maxBatchOps = 100

// Retry delays of a failed session batch.
const (
	batchRetryMin = 100 * time.Millisecond
	batchRetryMax = 2 * time.Second
)

// errClosed is returned by writes to a closed store.
var errClosed = errors.New("store closed")

// sessionBatch queues session writes and writes them in the background,
// several to a transaction, so that a placement never waits on etcd for
// them. Only the latest write of each session is kept.
type sessionBatch struct {
	e       *Etcd
	mu      sync.Mutex
	pending map[string][]byte // session id → JSON value; nil: delete
	stopped bool
	kick    chan struct{} // 1-buffered: there is something to write
	done    chan struct{} // closed by stop
	wmu     sync.Mutex    // one writer at a time, run or flush
}

func newSessionBatch(e *Etcd) *sessionBatch {
	return &sessionBatch{e: e, pending: map[string][]byte{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// add queues a put (val non-nil) or a delete of session id.
func (b *sessionBatch) add(id string, val []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return fmt.Errorf("etcd session %s: %w", id, errClosed)
	}
	b.pending[id] = val
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return nil
}

// run writes queued sessions until stop, retrying with backoff while etcd
// fails.
func (b *sessionBatch) run() {
	delay := batchRetryMin
	failing := false
	for {
		select {
		case <-b.done:
			return
		case <-b.kick:
		}
		for {
			ctx, cancel := context.WithTimeout(b.e.ctx, b.e.cfg.DialTimeout)
			err := b.writeOnce(ctx)
			cancel()
			if err == nil {
				if failing {
					b.e.log.Info("etcd: session writes succeed again")
				}
				failing, delay = false, batchRetryMin
				break
			}
			if !failing {
				b.e.log.Warn("etcd: session writes failing; retrying", "err", err)
			}
			failing = true
			select {
			case <-b.done:
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, batchRetryMax)
		}
	}
}

// flush writes everything queued, and what gets queued meanwhile, before
// it returns.
func (b *sessionBatch) flush(ctx context.Context) error {
	for {
		b.mu.Lock()
		n := len(b.pending)
		b.mu.Unlock()
		if n == 0 {
			return nil
		}
		if err := b.writeOnce(ctx); err != nil {
			return err
		}
	}
}

// stop ends run; later adds fail.
func (b *sessionBatch) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.stopped {
		b.stopped = true
		close(b.done)
	}
}

// writeOnce takes what is queued and writes it in transactions of at
// most maxBatchOps operations. What a failed transaction or the ones
// after it carried goes back in the queue, unless a newer write of the
// same session came meanwhile.
func (b *sessionBatch) writeOnce(ctx context.Context) error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	batch := b.pending
	b.pending = map[string][]byte{}
	b.mu.Unlock()
	ids := slices.Sorted(maps.Keys(batch))
	for start := 0; start < len(ids); start += maxBatchOps {
		chunk := ids[start:min(start+maxBatchOps, len(ids))]
		ops := make([]clientv3.Op, len(chunk))
		for i, id := range chunk {
			k := b.e.key(dirSessions + id)
			if val := batch[id]; val != nil {
				ops[i] = clientv3.OpPut(k, string(val))
			} else {
				ops[i] = clientv3.OpDelete(k)
			}
		}
		_, err := timed(&b.e.lat, func() (*clientv3.TxnResponse, error) {
			return b.e.client.Txn(ctx).Then(ops...).Commit()
		})
		if err != nil {
			b.requeue(batch, ids[start:])
			return fmt.Errorf("etcd write %d sessions: %w", len(ids)-start, err)
		}
	}
	return nil
}

// requeue puts ids of batch back in the queue where no newer write came.
func (b *sessionBatch) requeue(batch map[string][]byte, ids []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if _, newer := b.pending[id]; !newer {
			b.pending[id] = batch[id]
		}
	}
}
