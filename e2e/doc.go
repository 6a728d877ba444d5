// Package e2e holds end-to-end tests: the broker, gateways and appd servers
// run in-process through the same daemon functions the binaries call, on
// real loopback sockets, spawning real processes in real PTYs, driven by an
// x/crypto/ssh client and by the stock OpenSSH client.
package e2e
