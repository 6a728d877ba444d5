// Package loadgen is the logic of the load tool (cmd/load): it opens SSH
// sessions with golang.org/x/crypto/ssh against any SSH server on
// loopback, a Switchyard gateway or a stock sshd alike, and measures them.
//
// Modes:
//
//   - setup: N sessions, each on a new connection (TCP connect, handshake,
//     auth, session, exec), timed from TCP connect to the first byte of
//     the app's output; p50/p99/max and sessions per second.
//   - echo: one PTY session running a raw-mode cat; one byte at a time,
//     timed until it comes back; p50/p99.
//   - bulk: bytes streamed through cat and back, verified by sha256
//     (without a PTY), or read from an app writing to its PTY; MB/s.
//   - hold: N concurrent sessions, each echo-verified, held open, verified
//     again, with the memory (RSS, PSS) of chosen processes before and
//     after, and per session.
//   - client: the stock ssh binary launched N times (ssh -tt by default),
//     timed from launch to the first byte of its output.
//   - compare: two files of -json results side by side, with ratios and
//     the performance targets of issue 8.
//
// Every run is bounded by -timeout, and only loopback targets are accepted
// unless -allow-remote is given.
package loadgen
