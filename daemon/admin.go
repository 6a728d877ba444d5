package daemon

import (
	"context"
	"encoding/json"
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

func (a *adminServers) close() {
	for _, s := range a.servers {
		s.Close()
	}
}

// serveAdmin opens and serves the admin listeners of cfg: [broker] admin
// (a Unix socket only its user, root and admin_group reach, or a TCP
// address) and admin_tcp. Every TCP listener requires the token
// (config validation refuses one without) and checks Host and Origin.
func serveAdmin(cfg *config.Config, env Env, b *broker.Broker) (*adminServers, error) {
	a := &adminServers{}
	serve := func(ln net.Listener, access broker.AdminAccess) {
		s := &http.Server{Handler: b.AdminHandler(access), ReadHeaderTimeout: 5 * time.Second,
			ConnContext: adminCaller}
		a.servers = append(a.servers, s)
		a.addrs = append(a.addrs, ln.Addr().String())
		go s.Serve(ln)
	}
	bc := cfg.Broker
	if path := cfg.AdminSocket(); path != "" {
		ln, err := listenAdminSocket(path, bc.AdminGroup)
		if err != nil {
			return nil, err
		}
		serve(ln, broker.AdminAccess{})
	}
	for _, addr := range []string{bc.Admin, bc.AdminTCP} {
		if addr == "" || cfg.AdminSocket() != "" && addr == bc.Admin {
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

func newAdminClient(cfg *config.Config) adminClient {
	if path := cfg.AdminSocket(); path != "" {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		return adminClient{where: path, base: "http://broker-admin", hc: &http.Client{Transport: tr}}
	}
	return adminClient{where: cfg.Broker.Admin, base: "http://" + cfg.Broker.Admin, token: cfg.Broker.AdminToken,
		hc: http.DefaultClient}
}

// call sends one request and returns the response body, or an error
// carrying the broker's message (escaped: it may quote a client's words).
func (a adminClient) call(ctx context.Context, method, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
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
		return nil, fmt.Errorf("broker at %s: %s", a.where, safelog.Text(strings.TrimSpace(string(body)), 512))
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
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	st, raw, err := newAdminClient(cfg).status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err = env.stdout().Write(raw)
		return err
	}
	return broker.WriteStatus(env.stdout(), st)
}

// brokerDrain runs `broker drain|undrain -config FILE SERVER`.
func brokerDrain(ctx context.Context, verb string, args []string, env Env) error {
	var c common
	fs := flag.NewFlagSet("broker "+verb, flag.ContinueOnError)
	c.register(fs)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: broker %s -config FILE SERVER", ErrUsage, verb)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	server := fs.Arg(0)
	if _, err := newAdminClient(cfg).call(ctx, http.MethodPost, "/"+verb+"/"+url.PathEscape(server)); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout(), "%s: %sed\n", safelog.Text(server, 0), verb)
	return nil
}
