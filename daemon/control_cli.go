package daemon

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchyard/audit"
	"switchyard/broker"
	"switchyard/safelog"
)

// Admin control of sessions and users: broker sessions, kill, kick, lock,
// unlock and audit. Each talks to the admin API (the socket, or TCP with
// the token) of the first broker that answers.

// controlSynopses are the control subcommands' usage lines.
var controlSynopses = map[string]string{
	"broker sessions": "broker sessions [-user U] [-server S] [-json] [-node NAME] -config FILE",
	"broker kill":     "broker kill [-reason TEXT] [-node NAME] -config FILE SESSION",
	"broker kick":     "broker kick [-reason TEXT] [-node NAME] -config FILE USER",
	"broker lock":     "broker lock [-until TIME] [-reason TEXT] [-node NAME] -config FILE USER",
	"broker unlock":   "broker unlock [-node NAME] -config FILE USER",
	"broker audit":    "broker audit [-user U] [-session ID] [-since TIME] [-max N] [-json] [-node NAME] -config FILE",
}

func init() {
	for name, syn := range controlSynopses {
		synopses[name] = syn
	}
	synopses["broker"] += `
broker sessions [-user U] [-server S] [-json] -config FILE   every session in the cluster
broker kill [-reason TEXT] -config FILE SESSION   end a session; its user is told why
broker kick [-reason TEXT] -config FILE USER      end every session of USER
broker lock [-until TIME] [-reason TEXT] -config FILE USER   refuse USER's logins and resumes; unlock USER to restore
broker audit [-user U] [-session ID] [-since TIME] [-json] -config FILE   the audit trail of every node, in time order`
}

// controlCommand returns the control subcommand named name, or nil.
func controlCommand(name string) func(context.Context, []string, Env) error {
	switch name {
	case "sessions":
		return brokerSessions
	case "kill":
		return brokerKill
	case "kick":
		return brokerKick
	case "lock":
		return func(ctx context.Context, args []string, env Env) error { return brokerLock(ctx, true, args, env) }
	case "unlock":
		return func(ctx context.Context, args []string, env Env) error { return brokerLock(ctx, false, args, env) }
	case "audit":
		return brokerAudit
	}
	return nil
}

// controlFlags is what every control subcommand parses: -config and the
// common flags, -node, and the subcommand's own.
type controlFlags struct {
	c    common
	fs   *flag.FlagSet
	node *string
	warn io.Writer // where a config that does not load is reported (see adminConfig)
}

func newControlFlags(name string, warn io.Writer) *controlFlags {
	f := &controlFlags{fs: flag.NewFlagSet("broker "+name, flag.ContinueOnError), warn: warn}
	f.c.register(f.fs)
	f.node = f.fs.String("node", "", "ask this broker (default: each in turn until one answers)")
	return f
}

// parse parses args, flags before or after the operands, and returns
// the operands; want is their number (-1: none checked).
func (f *controlFlags) parse(args []string, want int) ([]string, error) {
	var operands []string
	for {
		if err := parseFlags(f.fs, args); err != nil {
			return nil, err
		}
		if f.fs.NArg() == 0 {
			break
		}
		operands = append(operands, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
	if want >= 0 && len(operands) != want {
		return nil, fmt.Errorf("%w: %s", ErrUsage, controlSynopses[f.fs.Name()])
	}
	return operands, nil
}

// post sends a POST to the first broker that takes it and returns its
// answer.
func (f *controlFlags) post(ctx context.Context, path string, q url.Values) ([]byte, error) {
	return f.request(ctx, http.MethodPost, path, q)
}

func (f *controlFlags) request(ctx context.Context, method, path string, q url.Values) ([]byte, error) {
	cfg, err := f.c.adminConfig(f.warn)
	if err != nil {
		return nil, err
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var body []byte
	err = firstAnswer(adminClients(cfg, *f.node), func(a adminClient) (err error) {
		body, err = a.call(ctx, method, path)
		return err
	})
	return body, err
}

// brokerSessions runs `broker sessions`.
func brokerSessions(ctx context.Context, args []string, env Env) error {
	f := newControlFlags("sessions", env.stderr())
	user := f.fs.String("user", "", "only this user's sessions")
	server := f.fs.String("server", "", "only the sessions on this server")
	asJSON := f.fs.Bool("json", false, "print JSON")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	q := url.Values{}
	setIf(q, "user", *user)
	setIf(q, "server", *server)
	body, err := f.request(ctx, http.MethodGet, "/sessions", q)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err = env.stdout().Write(body)
		return err
	}
	var v broker.SessionsView
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("decode sessions: %w", err)
	}
	return broker.WriteSessions(env.stdout(), v.Sessions)
}

// brokerKill runs `broker kill SESSION`.
func brokerKill(ctx context.Context, args []string, env Env) error {
	f := newControlFlags("kill", env.stderr())
	reason := f.fs.String("reason", "", "what the user is told, after \"session ended by an administrator: \"")
	ops, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	return f.kills(ctx, "/kill/"+url.PathEscape(ops[0]), *reason, env)
}

// brokerKick runs `broker kick USER`.
func brokerKick(ctx context.Context, args []string, env Env) error {
	f := newControlFlags("kick", env.stderr())
	reason := f.fs.String("reason", "", "what the user is told, after \"session ended by an administrator: \"")
	ops, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	return f.kills(ctx, "/kick/"+url.PathEscape(ops[0]), *reason, env)
}

// kills posts a kill or a kick and prints what it ended; a session that
// could not be ended fails the command.
func (f *controlFlags) kills(ctx context.Context, path, reason string, env Env) error {
	q := url.Values{}
	setIf(q, "reason", reason)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	body, err := f.post(ctx, path, q)
	if err != nil {
		return err
	}
	var v broker.KillView
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("decode kill answer: %w", err)
	}
	broker.WriteKills(env.stdout(), v)
	if len(v.Failed) > 0 {
		return fmt.Errorf("%d session(s) not killed", len(v.Failed))
	}
	if len(v.Killed) == 0 {
		fmt.Fprintln(env.stdout(), "no sessions")
	}
	return nil
}

// brokerLock runs `broker lock USER` (on) and `broker unlock USER`.
func brokerLock(ctx context.Context, on bool, args []string, env Env) error {
	verb := map[bool]string{true: "lock", false: "unlock"}[on]
	f := newControlFlags(verb, env.stderr())
	var until, reason *string
	if on {
		until = f.fs.String("until", "", "lift the lock at this `TIME`: RFC 3339, or a duration from now (\"2h\"); default: until unlock")
		reason = f.fs.String("reason", "", "what the user is told, after \"user locked by an administrator: \"")
	}
	ops, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	q := url.Values{}
	if on {
		t, err := timeArg(*until, time.Now(), +1)
		if err != nil {
			return fmt.Errorf("%w: -until: %v", ErrUsage, err)
		}
		if !t.IsZero() {
			q.Set("until", t.UTC().Format(time.RFC3339))
		}
		setIf(q, "reason", *reason)
	}
	if _, err := f.post(ctx, "/"+verb+"/"+url.PathEscape(ops[0]), q); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout(), "%s: %sed\n", safelog.Text(ops[0], 0), verb)
	return nil
}

// brokerAudit runs `broker audit`.
func brokerAudit(ctx context.Context, args []string, env Env) error {
	f := newControlFlags("audit", env.stderr())
	user := f.fs.String("user", "", "only this user's events")
	session := f.fs.String("session", "", "only this session's events (its id, or a prefix of at least 6 characters)")
	since := f.fs.String("since", "", "only events from this `TIME` on: RFC 3339, or a duration ago (\"1h\")")
	most := f.fs.Int("max", 0, "at most this many events per node, the latest (default 10000)")
	asJSON := f.fs.Bool("json", false, "print JSON lines, one event a line")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	t, err := timeArg(*since, time.Now(), -1)
	if err != nil {
		return fmt.Errorf("%w: -since: %v", ErrUsage, err)
	}
	q := url.Values{}
	setIf(q, "user", *user)
	setIf(q, "session", *session)
	if !t.IsZero() {
		q.Set("since", t.UTC().Format(time.RFC3339Nano))
	}
	if *most > 0 {
		q.Set("max", strconv.Itoa(*most))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := f.gatherAudit(ctx, q)
	if err != nil {
		return err
	}
	if !*asJSON {
		return broker.WriteAudit(env.stdout(), v)
	}
	enc := json.NewEncoder(env.stdout())
	for _, ev := range v.Events {
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	for _, n := range v.Notes {
		fmt.Fprintf(env.stderr(), "broker audit: %s\n", safelog.Text(n, 1024))
	}
	return nil
}

// gatherAudit asks the first broker that answers for every node's events
// that pass q, then every other broker (unless -node names one) for its
// own, and merges them in time order.
func (f *controlFlags) gatherAudit(ctx context.Context, q url.Values) (broker.AuditView, error) {
	var v broker.AuditView
	cfg, err := f.c.adminConfig(f.warn)
	if err != nil {
		return v, err
	}
	clients := adminClients(cfg, *f.node)
	answered := ""
	err = firstAnswer(clients, func(a adminClient) error {
		body, err := a.call(ctx, http.MethodGet, "/audit?"+q.Encode())
		if err == nil {
			answered = a.where
			err = json.Unmarshal(body, &v)
		}
		return err
	})
	if err != nil {
		return v, err
	}
	if q.Get("session") != "" {
		var conns []string
		for _, ev := range v.Events {
			if c := audit.ConnOf(ev); c != "" && !slices.Contains(conns, c) {
				conns = append(conns, c)
			}
		}
		if len(conns) > 0 {
			q.Set("conns", strings.Join(conns, ","))
		}
	}
	q.Set("local", "1")
	lists := [][]audit.Event{v.Events}
	for _, a := range clients {
		if a.where == answered {
			continue
		}
		var own broker.AuditView
		body, err := a.call(ctx, http.MethodGet, "/audit?"+q.Encode())
		if err == nil {
			err = json.Unmarshal(body, &own)
		}
		if err != nil {
			v.Notes = append(v.Notes, err.Error())
			continue
		}
		v.Notes = append(v.Notes, own.Notes...)
		lists = append(lists, own.Events)
	}
	v.Events = audit.Merge(lists...)
	return v, nil
}

// timeArg parses a TIME flag: RFC 3339, or a duration from now (sign
// +1, for -until) or ago (sign -1, for -since). "" is the zero time.
func timeArg(s string, now time.Time, sign int) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(time.Duration(sign) * d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration like \"2h\"", s)
	}
	return t, nil
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}
