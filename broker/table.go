package broker

import (
	"time"

	"switchyard/selection"
)

// b.tab holds the configured servers as the policy sees them (the servers
// candidates lists, in the same order), so that a placement decides with
// selection.Policy.PlaceTable without reading every server. Each event
// that changes what the policy sees of a server puts it in b.tab at once,
// in constant time:
//
//   - its count (sessions known and placements pending): putSession,
//     unindex, addPending, confirmPending and prune, through recount;
//   - its load: a report (serverReport);
//   - its health: a report, a link up or down (setHealth), and a report
//     growing three intervals old (expireReports);
//   - draining: Drain;
//   - the rest (region, apps, limit) and the list itself: SetCluster,
//     which builds b.tab anew (newTab).
//
// Health and counts change with time too: b.tab's health is as of
// b.freshAt (moved on at every report, link change and placement) and
// its counts as of b.countedAt (countAt: at every placement, status and
// apps list), neither going back. What ages out as they move on is found
// at the front of b.reports and b.placements, kept in time order: a
// placement is recorded at b.countedAt at the earliest, and reports come
// in order as long as the clock does not go back (time.Now's monotonic
// reading does not; a test clock that did would leave a server healthy in
// b.tab a little longer than a scan would).

// reportAt is a server report in b.reports: whose, and when.
type reportAt struct {
	st *serverState
	at time.Time
}

// placementAt is a placement in b.placements: on which server, and when.
type placementAt struct {
	server string
	at     time.Time
}

// queue is a first-in, first-out list that reuses its space: once half
// of it has been taken, what is left moves to the front rather than the
// list growing.
type queue[T any] struct {
	items []T
	head  int // items[:head] have been taken
}

// push adds x at the back.
func (q *queue[T]) push(x T) {
	if len(q.items) == cap(q.items) && q.head > 0 && 2*q.head >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, x)
}

// front returns the item at the front; ok is false when q is empty.
func (q *queue[T]) front() (x T, ok bool) {
	if q.head == len(q.items) {
		return x, false
	}
	return q.items[q.head], true
}

// pop removes the item at the front, which there must be.
func (q *queue[T]) pop() {
	var zero T
	q.items[q.head] = zero
	if q.head++; q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
}

// recount puts in b.tab how many sessions count against the server with
// index entry o, if configured. Callers hold b.mu.
func (b *Broker) recount(o *serverSessions) {
	if o.row >= 0 {
		b.tab.SetSessions(o.row, len(o.sessions)+len(o.pending))
	}
}

// loadOf is the CPU load per CPU the policy sees of the server with state
// st: the CPU in use it last reported (the load average, from an appd
// that does not report it), plus what the placements made on it since
// are expected to use.
func loadOf(st *serverState) float64 {
	if st.report.CPUs > 0 {
		return st.report.CPU + st.cpuSince
	}
	return st.report.Load + st.cpuSince
}

// expectCPU counts against the server the CPU a new session of app is
// expected to use, as its last report estimates it, until its next
// report. Callers hold b.mu.
func (b *Broker) expectCPU(server, app string) {
	st := b.servers[server]
	if st == nil || st.report.CPUs <= 0 {
		return
	}
	est := st.report.AppCPU[app]
	if !(est > 0) {
		return
	}
	st.cpuSince += est / float64(st.report.CPUs)
	if st.row >= 0 {
		b.tab.SetLoad(st.row, loadOf(st))
	}
}

// setHealth puts in b.tab whether the server with state st is healthy at
// now, after the reports older than three intervals at now have aged out.
// Callers hold b.mu.
func (b *Broker) setHealth(st *serverState, now time.Time) {
	b.expireReports(now)
	if st.row >= 0 {
		b.tab.SetHealthy(st.row, b.healthy(st, b.freshAt))
	}
}

// reported puts the report the server with state st just made (at
// st.lastReport, its load in st.report) in b.tab and b.reports. Callers
// hold b.mu.
func (b *Broker) reported(st *serverState) {
	b.reports.push(reportAt{st: st, at: st.lastReport})
	st.cpuSince = 0
	if st.row >= 0 {
		b.tab.SetLoad(st.row, loadOf(st))
	}
	b.setHealth(st, st.lastReport)
}

// expireReports moves b.freshAt to now, if later, and marks unhealthy in
// b.tab the servers whose latest report is then more than three intervals
// old. Callers hold b.mu.
func (b *Broker) expireReports(now time.Time) {
	if now.After(b.freshAt) {
		b.freshAt = now
	}
	since := b.freshSince(b.freshAt)
	for r, ok := b.reports.front(); ok && r.at.Before(since); r, ok = b.reports.front() {
		b.reports.pop()
		if r.st.row >= 0 && !reportedSince(r.st, since) {
			b.tab.SetHealthy(r.st.row, false)
		}
	}
}

// newTab builds b.tab from b.table, as of now. Callers hold b.mu.
func (b *Broker) newTab() {
	at := b.now()
	if at.Before(b.freshAt) {
		at = b.freshAt
	}
	b.cands = b.appendServers(b.cands[:0], b.freshSince(at))
	b.tab = selection.NewTable(b.cands)
	b.expireReports(at) // marks again what the new b.tab has: only b.reports and b.freshAt move on
	clear(b.carried)    // carriers are indexes in a list of gateways that may have changed
}
