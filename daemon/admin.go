package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"switchyard/broker"
	"switchyard/config"
	"switchyard/safelog"
)

// adminServers are the broker's admin listeners: its Unix socket, if
// configured, and its TCP listeners.
type adminServers struct {
	servers []*http.Server
	addrs   []string // for the log
}

// serve serves h on ln in the background.
func (a *adminServers) serve(ln net.Listener, h http.Handler) {
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ConnContext: adminCaller}
	a.servers = append(a.servers, s)
	a.addrs = append(a.addrs, ln.Addr().String())
	go s.Serve(ln)
}

func (a *adminServers) close() {
	for _, s := range a.servers {
		s.Close()
	}
}

// serveAdmin opens and serves the admin listeners of broker node: its
// admin (a Unix socket only its user, root and admin_group reach, or a
// TCP address) and admin_tcp. Every TCP listener requires the token
// (config validation refuses one without) and checks Host and Origin.
func serveAdmin(cfg *config.Config, node string, env Env, b *broker.Broker) (*adminServers, error) {
	a := &adminServers{}
	serve := func(ln net.Listener, access broker.AdminAccess) { a.serve(ln, b.AdminHandler(access)) }
	bc := cfg.Broker
	adminAddr, adminTCP := cfg.BrokerAdmin(node)
	socket := cfg.BrokerAdminSocket(node)
	if socket != "" {
		ln, err := listenAdminSocket(socket, bc.AdminGroup)
		if err != nil {
			return nil, err
		}
		serve(ln, broker.AdminAccess{})
	}
	for _, addr := range []string{adminAddr, adminTCP} {
		if addr == "" || socket != "" && addr == adminAddr {
			continue
		}
		ln, err := env.listen(addr)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("broker admin listen %s: %w", addr, err)
		}
		serve(ln, broker.AdminAccess{Token: bc.AdminToken, OpenMetrics: bc.AdminOpenMetrics,
			Hosts: adminHosts(addr, ln.Addr(), bc.AdminNames)})
	}
	return a, nil
}

// adminHosts are the names a TCP admin listener answers to: its
// configured and bound addresses, the names in admin_names, localhost on
// loopback, and every local IP when bound to all of them; each with the
// listener's port.
func adminHosts(configured string, bound net.Addr, names []string) []string {
	_, port, _ := net.SplitHostPort(bound.String())
	hosts := []string{strings.ToLower(configured), bound.String()}
	for _, n := range names {
		hosts = append(hosts, net.JoinHostPort(strings.ToLower(n), port))
	}
	ip := bound.(*net.TCPAddr).IP
	switch {
	case ip.IsLoopback():
		hosts = append(hosts, net.JoinHostPort("localhost", port))
	case ip.IsUnspecified():
		hosts = append(hosts, net.JoinHostPort("localhost", port))
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					hosts = append(hosts, net.JoinHostPort(n.IP.String(), port))
				}
			}
		}
	}
	return hosts
}

// adminClient talks to the broker's admin API where [broker] admin says:
// its Unix socket, or a TCP address with the token.
type adminClient struct {
	where string // for messages
	base  string // URL prefix
	token string
	hc    *http.Client
}

// newAdminClient talks to broker node's admin API: its socket, or its
// TCP admin address with the token.
func newAdminClient(cfg *config.Config, node string) adminClient {
	if path := cfg.BrokerAdminSocket(node); path != "" {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		return adminClient{where: path, base: "http://broker-admin", hc: &http.Client{Transport: tr}}
	}
	addr, _ := cfg.BrokerAdmin(node)
	return adminClient{where: addr, base: "http://" + addr, token: cfg.Broker.AdminToken, hc: http.DefaultClient}
}

// adminClients are the admin clients of the brokers the CLI may talk to:
// the one -node names, or every broker, in config order.
func adminClients(cfg *config.Config, node string) []adminClient {
	names := cfg.BrokerNames()
	if node != "" {
		names = []string{node}
	}
	out := make([]adminClient, len(names))
	for i, n := range names {
		out[i] = newAdminClient(cfg, n)
	}
	return out
}

// firstAnswer calls each client in turn until one answers: a broker that
// is down, or one that cannot act now (503: it does not lead), gives way
// to the next. It returns the first other answer, or the last error.
func firstAnswer(clients []adminClient, call func(adminClient) error) error {
	var err error
	for _, a := range clients {
		err = call(a)
		var ae *adminError
		if err == nil || errors.As(err, &ae) && ae.status != http.StatusServiceUnavailable {
			return err
		}
	}
	return err
}

// adminError is a broker's refusal of an admin request.
type adminError struct {
	status int
	msg    string
}

func (e *adminError) Error() string { return e.msg }

// call sends one request and returns the response body, or an error
// carrying the broker's message (escaped: it may quote a client's words).
func (a adminClient) call(ctx context.Context, method, path string) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok { // a caller may allow longer (broker audit)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("broker unavailable at %s: %w", a.where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", path, a.where, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &adminError{status: resp.StatusCode,
			msg: fmt.Sprintf("broker at %s: %s", a.where, safelog.Text(strings.TrimSpace(string(body)), 512))}
	}
	return body, nil
}

// status gets /status.
func (a adminClient) status(ctx context.Context) (broker.Status, []byte, error) {
	var st broker.Status
	body, err := a.call(ctx, http.MethodGet, "/status")
	if err != nil {
		return st, nil, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, nil, fmt.Errorf("decode status from %s: %w", a.where, err)
	}
	return st, body, nil
}

// brokerStatus prints the running broker's status view.
func brokerStatus(ctx context.Context, args []string, env Env) error {
	var c common
	fs := flag.NewFlagSet("broker status", flag.ContinueOnError)
	c.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	node := fs.String("node", "", "ask this broker (default: the first that answers)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.adminConfig(env.stderr())
	if err != nil {
		return err
	}
	var st broker.Status
	var raw []byte
	err = firstAnswer(adminClients(cfg, *node), func(a adminClient) (err error) {
		st, raw, err = a.status(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		_, err = env.stdout().Write(raw)
	} else {
		err = broker.WriteStatus(env.stdout(), st)
	}
	if err == nil && len(st.Problems) > 0 {
		err = fmt.Errorf("%w: %s", ErrDegraded, strings.Join(st.Problems, "; "))
	}
	return err
}

// brokerDrain runs `broker drain|undrain -config FILE SERVER`.
func brokerDrain(ctx context.Context, verb string, args []string, env Env) error {
	var c common
	fs := flag.NewFlagSet("broker "+verb, flag.ContinueOnError)
	c.register(fs)
	node := fs.String("node", "", "ask this broker (default: each in turn until the leader takes it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: broker %s -config FILE SERVER", ErrUsage, verb)
	}
	cfg, err := c.adminConfig(env.stderr())
	if err != nil {
		return err
	}
	server := fs.Arg(0)
	err = firstAnswer(adminClients(cfg, *node), func(a adminClient) error {
		_, err := a.call(ctx, http.MethodPost, "/"+verb+"/"+url.PathEscape(server))
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout(), "%s: %sed\n", safelog.Text(server, 0), verb)
	return nil
}
