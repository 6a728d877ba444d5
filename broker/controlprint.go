package broker

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"switchyard/control"
	"switchyard/safelog"
)

// WriteSessions prints sessions as a table for people (broker sessions),
// every text escaped and capped. The ID column holds the first 12
// characters, enough for broker kill.
func WriteSessions(w io.Writer, sessions []control.SessionInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tUSER\tAPP\tSERVER\tGATEWAY\tPID\tSTARTED\tSTATE")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", cell(short(s.ID)), cell(s.User), cell(s.App), cell(s.Server),
			cell(s.Gateway), s.PID, s.Started.Local().Format(time.DateTime), cell(stateText(s)))
	}
	return tw.Flush()
}

// WriteKills prints what /kill or /kick did, one line per session.
func WriteKills(w io.Writer, v KillView) {
	for _, s := range v.Killed {
		fmt.Fprintf(w, "killed %s (user %s, app %s, server %s, pid %d)\n", cell(s.ID), cell(s.User), cell(s.App),
			cell(s.Server), s.PID)
	}
	for _, f := range v.Failed {
		fmt.Fprintf(w, "not killed %s (user %s, server %s): %s\n", cell(f.Session.ID), cell(f.Session.User),
			cell(f.Session.Server), safelog.Text(f.Error, maxReason))
	}
}

// WriteAudit prints events one per line for people: time, node, event,
// session, user, then the fields as key=value in key order. The nodes
// wrote every string escaped; anything that still holds a control
// character (a file edited by hand) is escaped again.
func WriteAudit(w io.Writer, v AuditView) error {
	for _, n := range v.Notes {
		fmt.Fprintf(w, "# %s\n", safe(n))
	}
	for _, ev := range v.Events {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s", ev.TS.UTC().Format("2006-01-02T15:04:05.000Z"), safe(ev.Node), safe(ev.Event))
		if ev.Session != "" {
			fmt.Fprintf(&b, " session=%s", safe(ev.Session))
		}
		if ev.User != "" {
			fmt.Fprintf(&b, " user=%s", safe(ev.User))
		}
		for _, k := range slices.Sorted(maps.Keys(ev.Fields)) {
			fmt.Fprintf(&b, " %s=%s", safe(k), fieldText(ev.Fields[k]))
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// fieldText is one field's value for WriteAudit: strings quoted when they
// hold spaces, lists in brackets.
func fieldText(v any) string {
	switch v := v.(type) {
	case string:
		s := safe(v)
		if s == "" || strings.ContainsAny(s, " \"") {
			return fmt.Sprintf("%q", s)
		}
		return s
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = fieldText(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case nil:
		return "null"
	}
	return safe(fmt.Sprint(v))
}

// safe escapes s if it holds a control or format character; text the
// nodes escaped already is left as it is.
func safe(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
		return safelog.Text(s, maxReason)
	}
	return s
}
