package broker

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"switchyard/control"
	"switchyard/safelog"
)

// Status is the broker's picture of the cluster, as served to admins.
type Status struct {
	Time      time.Time             `json:"time"`
	Gateways  []GatewayStatus       `json:"gateways"`
	Servers   []ServerStatus        `json:"servers"`
	Sessions  []control.SessionInfo `json:"sessions"`
	Decisions []Decision            `json:"decisions"`
	// Reservations are the redirected clients the broker awaits, each
	// with the app pre-launched for it if any.
	Reservations []ReservationStatus `json:"reservations"`
	// Locks are the users an admin locked out, while in force.
	Locks []LockStatus `json:"locks"`
	// HA says which broker answered and who leads; set by the admin API.
	HA *HAStatus `json:"ha,omitempty"`
	// ConfigHash is the hash of the config the answering broker runs,
	// RestartNeeded the keys a refused reload changed that need its
	// restart.
	ConfigHash    string   `json:"config_hash"`
	RestartNeeded []string `json:"restart_needed"`
	// Problems says what makes the cluster degraded, one line each: a
	// server or gateway down, a node on another config, a restart
	// needed. Empty when the cluster is whole; `broker status` then
	// exits 0, else 3.
	Problems []string `json:"problems"`
}

// GatewayStatus is one gateway in Status.
type GatewayStatus struct {
	Name      string  `json:"name"`
	Connected bool    `json:"connected"`
	Sessions  int     `json:"sessions"`
	Capacity  int     `json:"capacity"`
	ReportAge float64 `json:"report_age_seconds"` // -1 if never reported
	// AuthFailures counts failed logins at the gateway since it started.
	AuthFailures uint64   `json:"auth_failures"`
	Healthy      bool     `json:"healthy"`  // may carry sessions: connected, reports fresh
	Redirect     string   `json:"redirect"` // "hint" or "relay"
	Reach        []string `json:"reach"`    // servers it reaches
	// ConfigHash is the hash of the config the gateway reported it runs
	// ("" before its first report); ConfigMismatch is set when it is not
	// the broker's; RestartNeeded are the keys a refused reload changed.
	ConfigHash     string   `json:"config_hash"`
	ConfigMismatch bool     `json:"config_mismatch"`
	RestartNeeded  []string `json:"restart_needed"`
}

// ServerStatus is one app server in Status.
type ServerStatus struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Healthy bool   `json:"healthy"`
	// Restarting is set on a server that is not healthy because its
	// link dropped a moment ago while it ran sessions (see restartWindow):
	// its appd is presumed restarting, and `broker status` says so
	// rather than DOWN.
	Restarting bool `json:"restarting"`
	Draining   bool `json:"draining"`
	// DrainedBy is who drained it: a Unix user, "token", "config"
	// (draining = true), or "unknown"; "" when not draining. DrainedAt
	// is when, for a drain by command.
	DrainedBy string    `json:"drained_by,omitempty"`
	DrainedAt time.Time `json:"drained_at,omitzero"`
	Load      float64   `json:"load"`
	Sessions  int       `json:"sessions"`
	Max       int       `json:"max_sessions"`
	Apps      []string  `json:"apps"`
	ReportAge float64   `json:"report_age_seconds"` // -1 if never reported
	// ConfigHash, ConfigMismatch and RestartNeeded are as for gateways.
	ConfigHash     string   `json:"config_hash"`
	ConfigMismatch bool     `json:"config_mismatch"`
	RestartNeeded  []string `json:"restart_needed"`
}

// Status returns a snapshot of the cluster.
func (b *Broker) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	now := b.now()
	b.pruneReservations(now)
	st := Status{Time: now, Decisions: append([]Decision(nil), b.recent...), Reservations: b.reservations(now),
		Locks:      b.lockStatus(now),
		ConfigHash: b.configHash, RestartNeeded: orEmpty(slices.Clone(b.restartNeeded))}
	b.countAt(now)
	for i := range b.table {
		t := &b.table[i]
		s, spec := t.st, t.spec
		ss := ServerStatus{Name: t.name, Addr: spec.Addr, Healthy: b.healthy(s, now), Draining: drainingOf(spec, s),
			Sessions: b.load(t.on), Max: spec.MaxSessions, Apps: spec.Apps, ReportAge: -1}
		ss.DrainedBy, ss.DrainedAt = drainerOf(spec, s)
		ss.Restarting = b.restarting(s, now)
		if s != nil && !s.lastReport.IsZero() {
			ss.Load, ss.ReportAge = s.report.Load, now.Sub(s.lastReport).Seconds()
			ss.ConfigHash, ss.RestartNeeded = s.report.ConfigHash, slices.Clone(s.report.RestartNeeded)
		}
		ss.ConfigMismatch, ss.RestartNeeded = mismatch(b.configHash, ss.ConfigHash), orEmpty(ss.RestartNeeded)
		st.Servers = append(st.Servers, ss)
	}
	for name, spec := range b.cluster.Gateways {
		g := b.gateways[name]
		gs := GatewayStatus{Name: name, Capacity: spec.Capacity, ReportAge: -1, Healthy: b.gatewayHealthy(g, now),
			Redirect: cmp.Or(spec.Redirect, RedirectHint), Reach: spec.Reach}
		if gs.Reach == nil {
			gs.Reach = b.allServers()
		}
		if g != nil {
			gs.Connected = g.links > 0
			if !g.lastReport.IsZero() {
				gs.Sessions, gs.ReportAge = g.report.Sessions, now.Sub(g.lastReport).Seconds()
				gs.AuthFailures = g.report.AuthFailures
				gs.ConfigHash, gs.RestartNeeded = g.report.ConfigHash, slices.Clone(g.report.RestartNeeded)
			}
		}
		gs.ConfigMismatch, gs.RestartNeeded = mismatch(b.configHash, gs.ConfigHash), orEmpty(gs.RestartNeeded)
		st.Gateways = append(st.Gateways, gs)
	}
	for _, s := range b.sessions {
		st.Sessions = append(st.Sessions, s.info)
	}
	sort.Slice(st.Gateways, func(i, j int) bool { return st.Gateways[i].Name < st.Gateways[j].Name })
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].Started.Before(st.Sessions[j].Started) })
	// Empty lists are [] in JSON, never null, so a script can range
	// over every one.
	st.Gateways, st.Servers, st.Sessions = orEmpty(st.Gateways), orEmpty(st.Servers), orEmpty(st.Sessions)
	st.Decisions, st.Reservations = orEmpty(st.Decisions), orEmpty(st.Reservations)
	st.Problems = problems(&st)
	return st
}

// WriteStatus prints st as tables for people. Every text field may come
// from a client or a report, so each is escaped and capped (safelog.Text):
// nothing in it can move, clear or retitle the admin's terminal.
func WriteStatus(w io.Writer, st Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	writeHA(tw, st.HA)
	writeProblems(tw, st)
	fmt.Fprintln(tw, "GATEWAY\tCONNECTED\tREDIRECT\tREACH\tSESSIONS\tCAPACITY\tREPORT AGE\tCONFIG")
	for _, g := range st.Gateways {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", cell(g.Name), yesNo(g.Connected), cell(g.Redirect),
			cells(g.Reach), g.Sessions, limitText(g.Capacity), age(g.ReportAge), configCell(st.ConfigHash, g.ConfigHash, g.RestartNeeded))
	}
	fmt.Fprintln(tw, "\nSERVER\tADDRESS\tHEALTH\tDRAINING\tLOAD\tSESSIONS\tREPORT AGE\tCONFIG")
	for _, s := range st.Servers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%d/%s\t%s\t%s\n", cell(s.Name), cell(s.Addr), serverHealth(s), drainText(s),
			s.Load, s.Sessions, limitText(s.Max), age(s.ReportAge), configCell(st.ConfigHash, s.ConfigHash, s.RestartNeeded))
	}
	fmt.Fprintln(tw, "\nSESSION\tUSER\tAPP\tSERVER\tGATEWAY\tPID\tSTARTED\tSTATE\tCLIENT\tROUTE")
	for _, s := range st.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", cell(short(s.ID)), cell(s.User), cell(s.App), cell(s.Server),
			cell(s.Gateway), s.PID, s.Started.Local().Format(time.DateTime), cell(stateText(s)), cell(s.ClientAddr), cell(s.Route))
	}
	writeLocks(tw, st.Locks)
	writeReservations(tw, st.Reservations)
	writeDecisions(tw, st.Decisions)
	return tw.Flush()
}

func writeReservations(w io.Writer, rs []ReservationStatus) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nRESERVATION\tUSER\tAPP\tSERVER\tGATEWAY\tFROM\tPID\tEXPIRES IN")
	for _, r := range rs {
		pid := "-"
		if r.PID > 0 {
			pid = fmt.Sprint(r.PID)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1fs\n", cell(short(r.SessionID)), cell(r.User), cell(r.App),
			cell(r.Server), cell(r.Gateway), cell(r.From), pid, max(r.ExpiresIn, 0))
	}
}

// writeDecisions prints the last five placements.
func writeDecisions(w io.Writer, ds []Decision) {
	if len(ds) == 0 {
		return
	}
	fmt.Fprintln(w, "\nLAST PLACEMENTS")
	for _, d := range ds[max(0, len(ds)-5):] {
		route := d.Route
		if d.Target != "" {
			route += " " + d.Target
		}
		pid := "-"
		if d.PID > 0 {
			pid = "pid " + strconv.Itoa(d.PID)
		}
		fmt.Fprintf(w, "%s\t%s@%s\t%s\t%s\t%s\n", d.Time.Local().Format(time.TimeOnly), cell(d.User), cell(d.App), cell(route),
			pid, dash(safelog.Text(d.Reason, maxReason)))
	}
}

// cell is a text field for a table: escaped, capped, "-" if empty.
func cell(s string) string { return dash(safelog.Text(s, safelog.Max)) }

// cells is a list of names for a table cell, each escaped and capped.
func cells(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = safelog.Text(s, safelog.Max)
	}
	return dash(strings.Join(out, ","))
}

// drainerOf is who drained a server of spec and state st, and when: the
// command's drain first, then the config's.
func drainerOf(spec ServerSpec, st *serverState) (string, time.Time) {
	switch {
	case st != nil && st.drained:
		return cmp.Or(st.drainedBy, "unknown"), st.drainedAt
	case spec.Draining:
		return "config", time.Time{}
	}
	return "", time.Time{}
}

// drainText is a server's DRAINING cell: "no", or "yes" with who and
// when.
func drainText(s ServerStatus) string {
	switch {
	case !s.Draining:
		return "no"
	case s.DrainedAt.IsZero():
		return "yes (" + safelog.Text(cmp.Or(s.DrainedBy, "unknown"), safelog.Max) + ")"
	}
	return "yes (" + safelog.Text(s.DrainedBy, safelog.Max) + ", " + s.DrainedAt.Local().Format(time.DateTime) + ")"
}

// limitText is a session limit for a table cell: the number, or
// "unlimited" for 0 (a server's max_sessions or a gateway's capacity
// switched off), as the placement reasons say it.
func limitText(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func health(ok bool) string {
	if ok {
		return "up"
	}
	return "DOWN"
}

// serverHealth is a server's HEALTH cell: up, restarting or DOWN.
func serverHealth(s ServerStatus) string {
	if !s.Healthy && s.Restarting {
		return "restarting"
	}
	return health(s.Healthy)
}

func age(s float64) string {
	if s < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1fs", s)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// stateText is a session's state for people: attached, or detached
// with how long ago.
func stateText(s control.SessionInfo) string {
	switch {
	case s.State == control.StateDetached && !s.Detached.IsZero():
		return "detached " + time.Since(s.Detached).Round(time.Second).String()
	case s.State == "":
		return control.StateAttached
	}
	return s.State
}

// orEmpty returns s, or an empty slice for nil.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
