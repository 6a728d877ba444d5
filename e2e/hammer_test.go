package e2e

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// hammer logs alice in over and over from several x/crypto clients at
// once, each login running `echo ready` without a PTY, until stopped: the
// parallel load under which a gateway's upgrade must lose nothing.
type hammer struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	n    int
	errs []error
}

// hammerLimit bounds one login, from dial to the app's exit: a login
// that stalls (a gateway stuck in its drain) counts as failed, well past
// what a healthy login takes on a loaded machine.
const hammerLimit = 20 * time.Second

// startHammer starts clients parallel logins to addr as alice.
func startHammer(addr string, alice ssh.Signer, clients int) *hammer {
	h := &hammer{stop: make(chan struct{})}
	cfg := &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.PublicKeys(alice)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: hammerLimit}
	for range clients {
		h.wg.Go(func() {
			for {
				select {
				case <-h.stop:
					return
				default:
				}
				h.done(hammerLogin(addr, cfg))
			}
		})
	}
	return h
}

// hammerLogin is one login running `echo ready`, cut at hammerLimit.
func hammerLogin(addr string, cfg *ssh.ClientConfig) error {
	client, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer client.Close()
	cut := time.AfterFunc(hammerLimit, func() { client.Close() })
	defer cut.Stop()
	s, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	out, err := s.Output("echo ready")
	if err != nil || string(out) != "ready\n" {
		return fmt.Errorf("echo ready: output %q, %v", out, err)
	}
	return nil
}

func (h *hammer) done(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if err != nil {
		h.errs = append(h.errs, err)
	}
}

// count is how many logins ended so far, failed ones included.
func (h *hammer) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// halt stops the clients and returns how many logins they made and the
// errors of those that failed.
func (h *hammer) halt() (int, []error) {
	close(h.stop)
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n, h.errs
}
