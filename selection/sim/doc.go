// Package sim is a deterministic discrete-event simulation that compares
// placement policies on the same synthetic workload: the broker's policy
// (selection.DefaultPolicy) against round-robin, uniform random,
// least-connections and power-of-two-choices.
//
// Everything is seeded (math/rand/v2 PCG) and the clock is simulated, so a
// run is a pure function of its Config. There are two workload families.
// The second (Workload "skewed", see skewed.go) is built to break a
// policy: four regions, one given 17-24 points less of the capacity than
// of its clients' demand; servers of 3, 5 or 7 slots a core; CPU-heavy
// apps on some servers only (build, 0.4 CPU, on every second; gpu, 0.8,
// on every third); a flash crowd of 12% of the capacity from the short
// region within a second between two reports; one server in 30 dying
// and as many draining at three times, each back later; three users
// holding hundreds of sessions. The first ("planned"), with the defaults
// of Config:
//
//   - Regions eu, us and ap. Clients come 50% from eu, 30% from us, 20% from
//     ap. Near lists: eu→[us], us→[eu, ap], ap→[us]; eu and ap are remote
//     from each other.
//   - Servers (60 by default) with Max drawn uniformly from 20, 30, ... 200
//     sessions and as many CPUs as Max/10. Regions are assigned largest
//     server first to the region furthest below its share of demand: by
//     default the session time its clients actually ask for in the measured
//     period (capacity planned from observed usage); with Provision "mix",
//     the expected client mix, so that random swings of regional demand
//     become regional surpluses and shortages. Every server offers "shell"
//     and "editor"; every second
//     server also offers "db"; every fifth also "gpu". Requests ask for
//     shell 50%, editor 25%, db 20%, gpu 5%.
//   - Users: a pool of Sessions/40 users (at least 100), each with a home
//     region drawn from the client shares. Visits arrive as a Poisson
//     process; a visit picks a user uniformly, connects from the home region
//     (90%) or from another region (10%, travelling), and opens 1 + a
//     geometric number of sessions (mean 2.5, at most 8), each 30 s apart on
//     average (exponential). Users come back many times over the run, often
//     while earlier sessions still run.
//   - Lifetimes: 40% batch sessions, exponential with mean 0.05 T, using half
//     a CPU each; 60% interactive sessions, log-normal (sigma 1) with mean T,
//     using 0.05 CPU. T is set by Little's law so that the offered load is
//     Utilisation (70%) of the total capacity. The cluster starts empty, so
//     the measured mean is a little lower (about 69%).
//   - Reports: every 2 s each server reports its running sessions and CPU
//     load. Between reports a policy sees, as the broker does, the reported
//     count plus its own placements since that report (departures are
//     invisible until the next report) and the reported load plus each
//     placement's app CPU estimate (the app's CPU weighted by lifetime, as
//     appd learns it).
//
// Metrics, over the time after Warmup (servers that are down are left
// out):
//
//   - Full: at each report instant, the share of servers at 95% of their
//     Max or more, averaged; CPUOver likewise, of servers using more CPUs
//     than they have.
//   - Imbalance: at each report instant, the utilisation (running/Max) of the
//     busiest server over the cluster's utilisation (all running / all
//     Max), averaged over the instants. 1.0 is perfect balance.
//   - Local: share of placed sessions on a server in the client's region.
//   - Affinity: of the sessions placed while their user already had a
//     running session, the share placed on a server running one of them.
//   - Rejected: requests no eligible server had room for (as the policy saw
//     the cluster), and requests for which no server was eligible at all.
//
// Baselines use Sessions/Max (the capacity ratio) where they compare load,
// so that big and small servers are treated fairly; they ignore regions,
// users and CPU load. All of them obey the same filter as the policy:
// healthy, not draining, offering the app, with room.
package sim
